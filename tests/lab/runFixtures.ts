/**
 * Hand-made run records for lab tests: a valid paralab.run/1 record whose
 * numbers a test sets explicitly (no engine involved), so claims, reports and
 * the runs store can be checked against known values.
 */
import type { RunRecord, Stat } from '../../main/lab/contract';

export const st = (p50: number, spread = 0): Stat => ({ mean: p50, p50, p90: p50 + spread, p99: p50 + 2 * spread });

export interface FixtureOptions {
  id?: string;
  label?: string;
  spec?: string;
  degrees?: Partial<Record<'dp' | 'pp' | 'tp' | 'sp' | 'ep', number>>;
  workload?: 'prefill' | 'decode' | 'serving';
  prefillTokS?: number;
  outputTokS?: number;
  ttftMs?: number;
  tpotMs?: number;
  /** per rank */
  weights?: number[];
  activation?: number[];
  comm?: { rank: number; op: string; count: number; bytes: number; expectedBytes?: number }[];
  steps?: number;
  created?: string;
  verified?: boolean;
}

let n = 0;

export function makeRecord(o: FixtureOptions = {}): RunRecord {
  const d = { dp: 1, pp: 1, tp: 1, sp: 1, ep: 1, ...o.degrees };
  const world = d.dp * d.pp * d.tp * d.sp;
  const spec = o.spec ?? (world === 1 ? 'single' : Object.entries(d).filter(([, v]) => v > 1).map(([k, v]) => `${k}=${v}`).join(','));
  const weights = o.weights ?? new Array(world).fill(1000);
  const id = o.id ?? `2026-01-01T00-00-0${n++}-${spec.replace(/,/g, '+')}-fx`;
  return {
    schema: 'paralab.run/1',
    id,
    created: o.created ?? `2026-01-01T00:00:${String(10 + n).padStart(2, '0')}.000Z`,
    label: o.label ?? spec,
    model: { id: 'synth-llama-tiny', arch: 'LlamaForCausalLM', params: 250000, layers: 4, hidden: 64, heads: 8, kv_heads: 4, head_dim: 8, ffn: 176, vocab: 512, experts: 0, top_k: 0, dtype: 'float32' },
    parallel: { spec, world, ...d, micro: d.pp, sp_impl: null, mesh: `TP(${d.tp})-SP(${d.sp})-PP(${d.pp})-DP(${d.dp})`, segments: 'collectives' },
    device: { kind: 'cpu', threads_per_rank: 1, host_cpu: 'Test CPU', cores: 2, memory_bytes: 8e9, platform: 'linux-x64', versions: { node: 'v20', onnxruntime_node: '1.30.0' } },
    workload: { kind: o.workload ?? 'decode', seed: 0, prompt_len: 8, output_len: 4, batch: 2, reps: 1 },
    metrics: {
      ttft_ms: st(o.ttftMs ?? 10, 1),
      tpot_ms: st(o.tpotMs ?? 5, 0.5),
      itl_ms: st(o.tpotMs ?? 5, 0.5),
      e2el_ms: st((o.ttftMs ?? 10) + 3 * (o.tpotMs ?? 5), 2),
      output_tok_s: o.outputTokS ?? 100,
      prefill_tok_s: o.prefillTokS ?? 1000,
      request_s: 10,
    },
    ranks: weights.map((w, rank) => ({
      rank,
      layers: [0, 4],
      memory: { weights_bytes: w, kv_cache_bytes: 100, activation_peak_bytes: o.activation?.[rank] ?? 50, rss_peak_bytes: 1e8 },
      time: { steps: o.steps ?? 4, compute_ms: 10, comm_ms: 2, wait_ms: 1, bubble_ms: 0 },
    })),
    comm: (o.comm ?? []).map((c) => ({ rank: c.rank, op: c.op, count: c.count, bytes_sent: c.bytes, bytes_recv: c.bytes, expected_count: c.count, expected_bytes_sent: c.expectedBytes ?? c.bytes, expected_bytes_recv: c.expectedBytes ?? c.bytes, ms: 1, wait_ms: 0.1, gb_s: 1 })),
    correctness: o.verified ? { checked: true, tokens_equal: true, max_abs_logit_diff: 1e-6, tolerance: 1e-3, passed: true, first_mismatch: null, note: 'fixture' } : { checked: false, note: 'fixture' },
    trace: { source: 'none', file: 'trace.json' },
  };
}
