/**
 * The UI's two languages (zh-CN, en): one typed message table per locale,
 * `t(key, params)` with `{name}` placeholders, and a reactive locale that
 * starts from navigator.language (or the last choice) and can be switched.
 */
import { ref, watchEffect } from 'vue';

const en = {
  'app.tagline': 'Parallel inference lab',
  'nav.models': 'Models',
  'nav.lab': 'Lab',
  'nav.compare': 'Compare',
  'nav.chat': 'Chat',
  'nav.reports': 'Reports',
  'nav.learn': 'Learn',
  'nav.soon': 'soon',
  'soon.title': 'Coming in a later version',
  'soon.lab': 'Run a model under a parallel strategy (DP, PP, TP, SP, EP) and check it against the single-worker reference.',
  'soon.compare': 'Run several strategies on the same workload and compare latency, throughput, memory and bytes moved.',
  'soon.chat': 'Chat with a model while it runs under any strategy.',
  'soon.reports': 'Export an experiment as a report that states each claim and whether the measurements bear it out.',
  'soon.learn': 'The course notes on parallel strategies, each claim linked to a measurement.',
  'models.title': 'Models',
  'models.subtitle': 'Built-in synthetic presets and the model folders ParaLab can see.',
  'models.count': '{n} models',
  'models.refresh': 'Refresh',
  'models.loading': 'Reading models…',
  'models.empty': 'No models found.',
  'models.error': 'Could not list models: {message}',
  'models.path.label': 'Add a model folder',
  'models.path.placeholder': '/path/to/a/hugging-face-model',
  'models.path.add': 'Add folder',
  'models.path.remove': 'Remove {path}',
  'models.chart.title': 'Parameters per model',
  'models.chart.series': 'Parameters',
  'models.col.model': 'Model',
  'models.col.source': 'Source',
  'models.col.arch': 'Architecture',
  'models.col.params': 'Params',
  'models.col.layers': 'Layers',
  'models.col.hidden': 'Hidden',
  'models.col.heads': 'Heads / KV',
  'models.col.experts': 'Experts',
  'models.col.dtype': 'Dtype',
  'models.col.size': 'Size',
  'models.col.status': 'Status',
  'models.source.preset': 'preset',
  'models.source.folder': 'folder',
  'models.source.hf-cache': 'HF cache',
  'models.experts': '{n} × top-{k}',
  'models.runnable': 'runnable',
  'models.notRunnable': 'listed only',
  'status.electron': 'Desktop',
  'status.web': 'Web host',
  'status.offline': 'Not connected',
  'status.cpus': '{n} CPUs',
  'status.memory': '{size} RAM',
  'locale.label': 'Language',
};

export type MessageKey = keyof typeof en;
export type Locale = 'en' | 'zh-CN';

const zhCN: Record<MessageKey, string> = {
  'app.tagline': '大模型并行推理实验室',
  'nav.models': '模型',
  'nav.lab': '实验',
  'nav.compare': '对比',
  'nav.chat': '对话',
  'nav.reports': '报告',
  'nav.learn': '学习',
  'nav.soon': '即将',
  'soon.title': '将在后续版本中提供',
  'soon.lab': '在某个并行策略（DP、PP、TP、SP、EP）下运行模型，并与单进程参考结果核对。',
  'soon.compare': '在同一负载上运行多种策略，对比延迟、吞吐、内存与通信量。',
  'soon.chat': '在任意并行策略下与模型对话。',
  'soon.reports': '把实验导出为报告：列出每条结论，以及测量结果是否支持它。',
  'soon.learn': '大模型并行策略课程笔记，每条结论都对应一次测量。',
  'models.title': '模型',
  'models.subtitle': '内置的合成模型预设，以及 ParaLab 能找到的模型文件夹。',
  'models.count': '{n} 个模型',
  'models.refresh': '刷新',
  'models.loading': '正在读取模型…',
  'models.empty': '没有找到模型。',
  'models.error': '无法列出模型：{message}',
  'models.path.label': '添加模型文件夹',
  'models.path.placeholder': '/path/to/a/hugging-face-model',
  'models.path.add': '添加文件夹',
  'models.path.remove': '移除 {path}',
  'models.chart.title': '各模型参数量',
  'models.chart.series': '参数量',
  'models.col.model': '模型',
  'models.col.source': '来源',
  'models.col.arch': '架构',
  'models.col.params': '参数量',
  'models.col.layers': '层数',
  'models.col.hidden': '隐藏维度',
  'models.col.heads': '注意力头 / KV',
  'models.col.experts': '专家',
  'models.col.dtype': '数据类型',
  'models.col.size': '大小',
  'models.col.status': '状态',
  'models.source.preset': '预设',
  'models.source.folder': '文件夹',
  'models.source.hf-cache': 'HF 缓存',
  'models.experts': '{n} × top-{k}',
  'models.runnable': '可运行',
  'models.notRunnable': '仅列出',
  'status.electron': '桌面版',
  'status.web': '网页版',
  'status.offline': '未连接',
  'status.cpus': '{n} 个 CPU',
  'status.memory': '内存 {size}',
  'locale.label': '语言',
};

const tables: Record<Locale, Record<MessageKey, string>> = { en, 'zh-CN': zhCN };
export const LOCALES: { id: Locale; label: string }[] = [
  { id: 'en', label: 'EN' },
  { id: 'zh-CN', label: '中文' },
];
const STORAGE_KEY = 'paralab.locale';

export function detectLocale(saved: string | null, language: string | undefined): Locale {
  if (saved === 'en' || saved === 'zh-CN') return saved;
  return language?.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

export const locale = ref<Locale>(detectLocale(storage()?.getItem(STORAGE_KEY) ?? null, globalThis.navigator?.language));

export function setLocale(l: Locale): void {
  locale.value = l;
  storage()?.setItem(STORAGE_KEY, l);
}

export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  return tables[locale.value][key].replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
}

watchEffect(() => {
  if (globalThis.document) document.documentElement.lang = locale.value;
});
