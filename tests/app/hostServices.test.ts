/** The desktop host services (main/ipc.ts): dialogs, report saving and the menu, through fakes — no Electron binary. */
import { describe, expect, it } from 'vitest';
import { HOST_CHANNELS, checkReportFile, createHostServices, menuLabelsFor, menuTemplate, trustedSenderCheck, wireHostIpc, type HostDeps, type InvokeEventLike, type IpcMainLike, type MenuCommand, type MenuItemLike } from '../../main/ipc';

function fakeDeps(over: Partial<HostDeps> = {}) {
  const writes: { path: string; text: string }[] = [];
  const dialogs: unknown[] = [];
  const deps: HostDeps = {
    showOpenDialog: async (o) => (dialogs.push(o), { canceled: false, filePaths: ['/models/qwen'] }),
    showSaveDialog: async (o) => (dialogs.push(o), { canceled: false, filePath: `/saved/${o.defaultPath.split('/').pop()}` }),
    writeFile: async (path, data) => void writes.push({ path, text: Buffer.from(data).toString('utf8') }),
    documentsDir: '/home/u/Documents',
    ...over,
  };
  return { deps, writes, dialogs };
}

describe('host services', () => {
  it('opens a folder, or answers null when the dialog is cancelled', async () => {
    await expect(createHostServices(fakeDeps().deps).openFolder()).resolves.toBe('/models/qwen');
    const cancelled = fakeDeps({ showOpenDialog: async () => ({ canceled: true, filePaths: [] }) });
    await expect(createHostServices(cancelled.deps).openFolder()).resolves.toBeNull();
  });

  it('saves a report where the user chose, decoding base64; nothing when cancelled', async () => {
    const f = fakeDeps();
    const s = createHostServices(f.deps);
    await expect(s.saveFile({ fileName: 'runs.csv', mime: 'text/csv', encoding: 'base64', data: Buffer.from('a,b\n1,2\n').toString('base64') })).resolves.toBe('/saved/runs.csv');
    expect(f.writes).toEqual([{ path: '/saved/runs.csv', text: 'a,b\n1,2\n' }]);
    expect(f.dialogs[0]).toMatchObject({ defaultPath: '/home/u/Documents/runs.csv', filters: [{ name: 'CSV', extensions: ['csv'] }] });
    const none = fakeDeps({ showSaveDialog: async () => ({ canceled: true }) });
    await expect(createHostServices(none.deps).saveFile({ fileName: 'r.md', mime: 'text/markdown', encoding: 'utf8', data: '#' })).resolves.toBeNull();
    expect(none.writes).toEqual([]);
  });

  it('refuses report files that could escape the chosen folder or are malformed', () => {
    for (const bad of [{ fileName: '../x.html', encoding: 'utf8', data: '' }, { fileName: 'a/b.md', encoding: 'utf8', data: '' }, { fileName: 'x.md', encoding: 'hex', data: '' }, { fileName: '.bashrc', encoding: 'utf8', data: '' }, null]) {
      expect(() => checkReportFile(bad)).toThrow();
    }
  });
});

describe('wireHostIpc', () => {
  const PAGE = 'file:///opt/ParaLab/out/renderer/index.html';
  function setup() {
    const handlers = new Map<string, (e: InvokeEventLike, ...a: unknown[]) => unknown>();
    const ipc: IpcMainLike = { handle: (c, l) => void handlers.set(c, l), removeHandler: (c) => void handlers.delete(c) };
    const f = fakeDeps();
    const dispose = wireHostIpc(ipc, createHostServices(f.deps), trustedSenderCheck(PAGE));
    const invoke = async (url: string | null, channel: string, ...args: unknown[]) => handlers.get(channel)!({ senderFrame: url === null ? null : { url } }, ...args);
    return { handlers, invoke, dispose, f };
  }

  it('answers the app page and refuses anyone else before any dialog opens', async () => {
    const { invoke, f, handlers, dispose } = setup();
    expect([...handlers.keys()].sort()).toEqual([HOST_CHANNELS.openFolder, HOST_CHANNELS.saveFile].sort());
    await expect(invoke(PAGE, HOST_CHANNELS.openFolder)).resolves.toBe('/models/qwen');
    for (const url of ['https://evil.example/', 'file:///tmp/evil.html', null]) {
      await expect(invoke(url, HOST_CHANNELS.saveFile, { fileName: 'x.md', encoding: 'utf8', data: 'x' })).rejects.toThrow(/"code":"unauthorized"/);
    }
    expect(f.dialogs).toHaveLength(1);
    await expect(invoke(PAGE, HOST_CHANNELS.saveFile, { fileName: '../x', encoding: 'utf8', data: '' })).rejects.toThrow(/plain file name/);
    dispose();
    expect(handlers.size).toBe(0);
  });
});

describe('menuTemplate', () => {
  const flat = (items: MenuItemLike[]): MenuItemLike[] => items.flatMap((i) => [i, ...flat(i.submenu ?? [])]);

  it('sends open-folder, export-report and one command per view, with accelerators', () => {
    const sent: MenuCommand[] = [];
    const items = flat(menuTemplate((c) => sent.push(c), 'linux', menuLabelsFor('en-US')));
    const byLabel = (l: string) => items.find((i) => i.label === l)!;
    byLabel('Open Model Folder…').click!();
    byLabel('Export Report…').click!();
    byLabel('Lab').click!();
    expect(sent).toEqual(['open-folder', 'export-report', 'view:lab']);
    expect(byLabel('Open Model Folder…').accelerator).toBe('CmdOrCtrl+O');
    expect(items.filter((i) => i.accelerator?.match(/^CmdOrCtrl\+[1-6]$/))).toHaveLength(6);
    expect(items.some((i) => i.role === 'quit')).toBe(true);
    expect(menuTemplate(() => {}, 'darwin')[0].role).toBe('appMenu');
    const zh = flat(menuTemplate(() => {}, 'linux', menuLabelsFor('zh-CN')));
    expect(zh.map((i) => i.label).filter(Boolean)).toEqual(['文件', '打开模型文件夹…', '导出报告…', '视图', '模型', '实验', '对比', '对话', '报告', '学习']);
  });
});
