/** `lab bench`: every spec on the same workload; one run folder per spec. */
import { parse, intOpt, UsageError } from './args';
import { bench } from '../lab/bench';
import type { Workload } from '../lab/bench';
import { formatBytes } from './format';

export async function benchCommand(argv: string[]): Promise<void> {
  const { values: v } = parse('bench', argv, {
    model: { type: 'string' },
    parallel: { type: 'string' },
    workload: { type: 'string' },
    'prompt-len': { type: 'string' },
    'output-len': { type: 'string' },
    batch: { type: 'string' },
    reps: { type: 'string' },
    'threads-per-rank': { type: 'string' },
    seed: { type: 'string' },
    ceiling: { type: 'boolean' },
    out: { type: 'string' },
    quiet: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (!v.model) throw new UsageError('--model is required');
  const workload = (v.workload ?? 'prefill') as Workload;
  if (workload !== 'prefill' && workload !== 'decode') throw new UsageError(`--workload must be prefill or decode (serving lands with the scheduler); got '${v.workload}'`);
  const specs = (v.parallel ?? 'single').split(';').map((s) => s.trim()).filter(Boolean);
  const quiet = v.quiet || v.json;
  const t0 = Date.now();
  const records = await bench({
    model: v.model,
    specs,
    workload,
    promptLen: intOpt('prompt-len', v['prompt-len'], workload === 'prefill' ? 128 : 16, 1),
    outputLen: intOpt('output-len', v['output-len'], 32, 2),
    batch: intOpt('batch', v.batch, 1, 1),
    reps: intOpt('reps', v.reps, 3, 1),
    threadsPerRank: v['threads-per-rank'] === undefined ? undefined : intOpt('threads-per-rank', v['threads-per-rank'], 1, 1),
    ceiling: v.ceiling === true,
    seed: intOpt('seed', v.seed, 0),
    outDir: v.out ?? 'runs',
    onProgress: (done, total, msg) => {
      if (!quiet) process.stderr.write(`[${done}/${total}] ${msg} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    },
  });
  if (v.json) {
    process.stdout.write(JSON.stringify({ runs: records }) + '\n');
    return;
  }
  const base = records[0];
  for (const r of records) {
    const m = r.metrics;
    const value = workload === 'prefill' ? m.prefill_tok_s : m.output_tok_s;
    const baseValue = workload === 'prefill' ? base.metrics.prefill_tok_s : base.metrics.output_tok_s;
    const w = (r.ranks as { weight_bytes: number }[]).reduce((a, x) => a + x.weight_bytes, 0);
    const times = (r.ranks as { time: { compute_ms: number; comm_ms: number; bubble_ms: number } }[]).map((x) => x.time);
    const split = times.map((t) => `${t.compute_ms.toFixed(0)}/${t.comm_ms.toFixed(0)}/${t.bubble_ms.toFixed(0)}`).join(' ');
    process.stdout.write(`${r.label.padEnd(28)} ${workload} ${value.toFixed(1).padStart(9)} tok/s  ×${(value / baseValue).toFixed(2)}  weights ${formatBytes(w)}  compute/comm/bubble ms per rank: ${split}\n`);
  }
  const roof = base.roofline;
  if (roof) process.stdout.write(`roofline: ${roof.read_gb_s.toFixed(1)} GB/s read → decode ≤ ${roof.decode_tok_s.toFixed(1)} tok/s at batch ${base.workload.batch}\n`);
}
