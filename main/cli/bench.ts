/**
 * `lab bench`: every spec on the same seeded workload; one run folder per spec
 * (run.json + trace.json) under --out (default: the shared runs directory,
 * PARALAB_RUNS or ~/.local/share/paralab/runs, which the app lists too).
 * With --json stdout is `{"runs": [run.json, …]}`; progress goes to stderr.
 */
import { parse, intOpt, numOpt, deviceOpt, UsageError, threadsOpt, timeoutOpt } from './args';
import { bench } from '../lab/bench';
import type { WorkloadKind } from '../lab/bench';
import { defaultRunsDir } from '../lab/record';
import { formatBytes, ms } from './format';
import { Progress } from './progress';
import { userPath } from './report';

const WORKLOADS: WorkloadKind[] = ['prefill', 'decode', 'serving'];

export async function benchCommand(argv: string[]): Promise<void> {
  const { values: v } = parse('bench', argv, {
    model: { type: 'string' },
    parallel: { type: 'string' },
    workload: { type: 'string' },
    'prompt-len': { type: 'string' },
    'output-len': { type: 'string' },
    batch: { type: 'string' },
    reps: { type: 'string' },
    requests: { type: 'string' },
    rate: { type: 'string' },
    'max-batch': { type: 'string' },
    'slo-ttft': { type: 'string' },
    'slo-tpot': { type: 'string' },
    'threads-per-rank': { type: 'string' },
    timeout: { type: 'string' },
    device: { type: 'string' },
    seed: { type: 'string' },
    verify: { type: 'boolean' },
    ceiling: { type: 'boolean' },
    'pp-compare': { type: 'boolean' },
    out: { type: 'string' },
    quiet: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (!v.model) throw new UsageError('--model is required (a preset id such as synth-llama-tiny, or a model folder)');
  const workload = (v.workload ?? 'prefill') as WorkloadKind;
  if (!WORKLOADS.includes(workload)) throw new UsageError(`--workload must be prefill, decode or serving; got '${v.workload}'`);
  const specs = (v.parallel ?? 'single').split(';').map((s) => s.trim()).filter(Boolean);
  const rate = numOpt('rate', v.rate);
  if (rate !== undefined && rate < 0) throw new UsageError(`--rate must be ≥ 0 requests/s (0 = all at once); got '${v.rate}'`);
  const sloTtft = numOpt('slo-ttft', v['slo-ttft']);
  const sloTpot = numOpt('slo-tpot', v['slo-tpot']);
  const progress = new Progress({ quiet: v.quiet || v.json });
  const { records, dirs } = await bench({
    model: v.model,
    specs,
    workload,
    promptLen: intOpt('prompt-len', v['prompt-len'], workload === 'prefill' ? 128 : 16, 1),
    outputLen: intOpt('output-len', v['output-len'], workload === 'prefill' ? 1 : 32, 1),
    batch: intOpt('batch', v.batch, 1, 1),
    reps: intOpt('reps', v.reps, 3, 1),
    requests: intOpt('requests', v.requests, 16, 1),
    rate: rate ?? 0,
    maxBatch: v['max-batch'] === undefined ? undefined : intOpt('max-batch', v['max-batch'], 8, 1),
    slo: sloTtft !== undefined || sloTpot !== undefined ? { ttftMs: sloTtft, tpotMs: sloTpot } : undefined,
    threadsPerRank: threadsOpt(v['threads-per-rank']),
    timeoutMs: timeoutOpt(v.timeout),
    device: v.device === undefined ? undefined : deviceOpt(v.device),
    seed: intOpt('seed', v.seed, 0),
    verify: v.verify === true,
    ceiling: v.ceiling === true,
    ppCompare: v['pp-compare'] === true,
    outDir: v.out ? userPath(v.out) : defaultRunsDir(),
    onProgress: (p) => progress.update(p),
  });
  progress.end();
  if (v.json) {
    process.stdout.write(JSON.stringify({ runs: records }) + '\n');
    return;
  }
  const base = records[0];
  const rateOf = (r: (typeof records)[number]) => (workload === 'prefill' ? r.metrics.prefill_tok_s : Number(r.metrics['decode_tok_s'] ?? r.metrics.output_tok_s));
  records.forEach((r, i) => {
    const value = rateOf(r);
    const w = r.ranks.reduce((a, x) => a + (x.memory?.weights_bytes ?? 0), 0);
    const split = r.ranks.map((x) => (x.time ? `${x.time.compute_ms.toFixed(0)}/${x.time.comm_ms.toFixed(0)}/${(x.time.wait_ms ?? 0).toFixed(0)}/${x.time.bubble_ms.toFixed(0)}` : '-')).join(' ');
    const lat = workload === 'prefill' ? `ttft p50 ${ms(r.metrics.ttft_ms.p50)}` : `tpot p50 ${ms(r.metrics.tpot_ms.p50)}`;
    const ok = !r.correctness.checked ? '' : r.correctness['passed'] ? '  verify ✓' : '  verify ✗';
    process.stdout.write(`${r.label.padEnd(28)} ${workload} ${value.toFixed(1).padStart(9)} tok/s  ×${(value / rateOf(base)).toFixed(2)}  ${lat}  weights ${formatBytes(w)}  compute/comm/wait/bubble ms: ${split}${ok}\n`);
    for (const n of (r.parallel['notes'] as string[] | undefined) ?? []) process.stdout.write(`  note: ${n}\n`);
    process.stdout.write(`  → ${dirs[i]}\n`);
  });
  const roof = base.roofline as { read_gb_s: number; decode_tok_s: number } | undefined;
  if (roof) process.stdout.write(`roofline: ${roof.read_gb_s.toFixed(1)} GB/s read → decode ≤ ${roof.decode_tok_s.toFixed(1)} tok/s at batch ${String(base.workload['batch'])}\n`);
}
