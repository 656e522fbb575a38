/** Run records, traces, claims and a scriptable fake LabApi (events included) for the Lab / Compare / Chat / Reports / Learn tests. */
import type { BenchJob, BenchRequest, ChatRequest, ClaimRow, LabApi, LabEvent, ReportRequest, RunRecord, RunSummary, SpecCheck, TraceEvent } from '../../main/lab/contract';
import { fakeLab } from './fixtures';

const stat = (p50: number, p99: number) => ({ mean: p50, p50, p90: (p50 + p99) / 2, p99 });

export function record(id: string, spec: string, deg: Partial<Record<'dp' | 'pp' | 'tp' | 'sp' | 'ep', number>>, o: { tokS: number; ttft: number; kind?: 'prefill' | 'decode'; moe?: boolean } ): RunRecord {
  const d = { dp: 1, pp: 1, tp: 1, sp: 1, ep: 1, ...deg };
  const world = d.dp * d.pp * d.tp * d.sp;
  return {
    schema: 'paralab.run/1',
    id,
    created: '2026-11-29T04:00:00Z',
    label: spec,
    model: { id: 'synth-llama-tiny', arch: 'LlamaForCausalLM', params: 281664, layers: 4, hidden: 64, heads: 8, kv_heads: 4, experts: 0, top_k: 0, dtype: 'float32' },
    parallel: { spec, world, ...d },
    device: { kind: 'cpu', threads_per_rank: 1, host_cpu: 'test' },
    workload: { kind: o.kind ?? 'prefill' },
    metrics: { ttft_ms: stat(o.ttft, o.ttft * 1.5), tpot_ms: stat(o.ttft / 4, o.ttft / 2), output_tok_s: o.tokS / 2, prefill_tok_s: o.tokS },
    ranks: Array.from({ length: world }, (_, r) => ({ rank: r, memory: { weights_bytes: 1_000_000 / world, kv_cache_bytes: 50_000, activation_peak_bytes: 20_000, rss_peak_bytes: 3e7 } })),
    comm: world > 1 && d.tp > 1 ? Array.from({ length: world }, (_, r) => ({ rank: r, op: 'all_reduce', count: 16, bytes_sent: 4096, bytes_recv: 4096, expected_count: 16, expected_bytes_sent: 4096 })) : [],
    correctness: world > 1 ? { checked: true, tokens_equal: true, max_abs_logit_diff: 2e-6, note: 'greedy tokens equal' } : { checked: false, note: 'reference' },
    ...(o.moe ? { expert_load: { tokens: [[5, 1, 0, 2], [3, 3, 1, 1]], balancedness: [2.5, 1.5] } } : {}),
  };
}

export const RECORDS: RunRecord[] = [record('r-single', 'single', {}, { tokS: 100, ttft: 40 }), record('r-tp2', 'tp=2', { tp: 2 }, { tokS: 150, ttft: 28 }), record('r-dp2', 'dp=2', { dp: 2 }, { tokS: 190, ttft: 41 })];

export const summary = (r: RunRecord): RunSummary => ({
  id: r.id,
  created: r.created,
  label: r.label,
  model: r.model.id,
  spec: r.parallel.spec,
  world: r.parallel.world,
  workload: r.workload.kind,
  device: 'cpu',
  output_tok_s: r.metrics.output_tok_s,
  prefill_tok_s: r.metrics.prefill_tok_s,
  ttft_p50_ms: r.metrics.ttft_ms.p50,
  tpot_p50_ms: r.metrics.tpot_ms.p50,
  correctness: r.correctness.checked ? 'pass' : 'unchecked',
});

export const TRACE: TraceEvent[] = [
  { name: 'process_name', ph: 'M', ts: 0, pid: 0, tid: 0, args: { name: 'rank 0 · tp0' } },
  { name: 'attn', cat: 'compute', ph: 'X', ts: 1000, dur: 400, pid: 0, tid: 0 },
  { name: 'all_reduce', cat: 'comm', ph: 'X', ts: 1400, dur: 100, pid: 0, tid: 0 },
  { name: 'attn', cat: 'compute', ph: 'X', ts: 1000, dur: 300, pid: 1, tid: 0 },
  { name: 'all_reduce', cat: 'wait', ph: 'X', ts: 1300, dur: 100, pid: 1, tid: 0 },
  { name: 'stage', cat: 'bubble', ph: 'X', ts: 1500, dur: 50, pid: 1, tid: 0 },
  { name: 'misc', cat: 'io', ph: 'X', ts: 1500, dur: 5, pid: 1, tid: 0 },
];

export const CLAIMS: ClaimRow[] = [
  { strategy: 'TP', aspect: 'latency', claim: { en: 'TP lowers latency', zh: 'TP 降低延迟' }, evidence: { en: 'ttft 28 ms vs 40 ms', zh: '首 token 28 毫秒 vs 40 毫秒' }, verdict: 'borne_out', runIds: ['r-single', 'r-tp2'] },
  { strategy: 'DP', aspect: 'throughput', claim: { en: 'DP scales throughput', zh: 'DP 提升吞吐' }, evidence: { en: '190 vs 100 tok/s', zh: '190 vs 100 token/秒' }, verdict: 'borne_out', runIds: ['r-single', 'r-dp2'] },
  { strategy: 'EP', aspect: 'memory', claim: { en: 'EP splits experts', zh: 'EP 切分专家' }, evidence: { en: 'no MoE run', zh: '没有 MoE 运行' }, verdict: 'not_measured', runIds: [] },
];

export function checkOf(spec: string): SpecCheck {
  const m = /tp=(\d+)/.exec(spec);
  const tp = m ? Number(m[1]) : 1;
  if (tp === 3) return { ok: false, message: 'tp=3 does not divide 8 attention heads; use tp ∈ {1,2,4,8}', spec, world: 3, degrees: { dp: 1, pp: 1, tp: 3, sp: 1, ep: 1 }, spImpl: null, notes: [], ranks: [] };
  const ranks = Array.from({ length: tp }, (_, r) => ({ rank: r, coord: { dp: 0, pp: 0, sp: 0, tp: r }, layers: [0, 4] as [number, number], groups: { tp: Array.from({ length: tp }, (_, i) => i) } }));
  return { ok: true, message: null, spec, world: tp, degrees: { dp: 1, pp: 1, tp, sp: 1, ep: 1 }, spImpl: null, notes: tp > 4 ? ['kv heads replicated'] : [], ranks };
}

/** A fake lab over these fixtures: records calls, lets the test emit events. */
export function scriptedLab(o: { records?: RunRecord[] } = {}) {
  const records = [...(o.records ?? RECORDS)];
  const base = fakeLab().lab;
  const listeners = new Set<(e: LabEvent) => void>();
  const calls = { checkSpec: [] as string[], startBench: [] as BenchRequest[], cancelBench: [] as string[], chat: [] as ChatRequest[], cancel: [] as string[], exportReport: [] as ReportRequest[], claims: [] as string[][], getTrace: [] as string[] };
  let chatReply: (req: ChatRequest) => Promise<Awaited<ReturnType<LabApi['chat']>>> = async () => {
    throw new Error('no chat scripted');
  };
  const lab: LabApi = {
    ...base,
    checkSpec: async (req) => (calls.checkSpec.push(req.parallel), checkOf(req.parallel)),
    startBench: async (req): Promise<BenchJob> => (calls.startBench.push(req), { jobId: 'job-1', state: 'running', specs: req.specs, done: 0, runIds: [], message: 'starting', error: null }),
    cancelBench: async (id) => void calls.cancelBench.push(id),
    listJobs: async () => [],
    listRuns: async () => records.map(summary),
    getRun: async (id) => {
      const r = records.find((x) => x.id === id);
      if (!r) throw new Error(`no run ${id}`);
      return r;
    },
    getTrace: async (id) => (calls.getTrace.push(id), TRACE),
    deleteRun: async (id) => void records.splice(records.findIndex((r) => r.id === id), 1),
    exportReport: async (req) => (calls.exportReport.push(req), { fileName: `paralab-report.${req.format}`, mime: 'text/plain', encoding: 'utf8', data: `report of ${req.runIds.join(',')}` }),
    claims: async (ids) => (calls.claims.push(ids), CLAIMS),
    chat: (req) => (calls.chat.push(req), chatReply(req)),
    cancel: async (id) => void calls.cancel.push(id),
    onEvent: (l) => (listeners.add(l), () => void listeners.delete(l)),
  };
  return {
    lab,
    calls,
    records,
    emit: (e: LabEvent) => listeners.forEach((l) => l(e)),
    listeners,
    onChat: (f: typeof chatReply) => (chatReply = f),
  };
}
