/**
 * The measured part of a benchmark run (lab/bench.ts): prefill / decode
 * batches back to back on one virtual clock, or the serving workload through
 * the engine's continuous-batching scheduler; and the host-side spans
 * (requests, scheduler steps) of the run's trace.
 */
import type { Engine } from '../engine/host/engine';
import { servingMetrics, type RequestTimeline, type PrefillSpan, type ServingMetrics } from './metrics';
import { nowUs, type HostSpan } from './trace';
import type { ServingDetail } from './serving';
import { BenchCancelled, measuredOutput } from './bench-options';
import type { BenchOptions } from './bench-options';

export type Progress = (p: { message: string; requestsDone?: number; requestsTotal?: number }) => void;

export type Measured = { metrics: ServingMetrics; requests: RequestTimeline[]; workload: Record<string, unknown>; extraMetrics: Record<string, number>; t0Us?: number; steps?: ServingDetail['steps'] };

/**
 * prefill / decode: `reps` batches back to back on one virtual clock. Every
 * sequence is a request arriving when its batch starts; its token times are
 * taken on the host as each step's tokens come back (onToken), per sequence,
 * so DP replicas each have their own timeline.
 */
export async function measureBatch(o: BenchOptions, engine: Engine, work: number[][]): Promise<Measured> {
  const out = measuredOutput(o);
  const requests: RequestTimeline[] = [];
  const prefill: PrefillSpan[] = [];
  let offset = 0;
  for (let rep = 0; rep < o.reps; rep++) {
    if (o.signal?.aborted) throw new BenchCancelled();
    const tokenMs: number[][] = work.map(() => []);
    const t0 = performance.now();
    const { timeline } = await engine.generate(work, {
      maxNewTokens: out,
      ignoreEos: true,
      onToken: (seq) => {
        tokenMs[seq].push(offset + performance.now() - t0);
      },
    });
    work.forEach((p, i) => {
      requests.push({ id: requests.length, arrivalMs: offset, firstScheduledMs: offset, tokenMs: tokenMs[i], promptLen: p.length, outputLen: tokenMs[i].length, finish: 'length' });
    });
    prefill.push({ startMs: offset, endMs: offset + timeline.prefillMs, tokens: work.length * o.promptLen });
    offset += timeline.totalMs;
  }
  const metrics = servingMetrics(requests, { durationMs: offset, prefill, slo: o.slo });
  const extra: Record<string, number> = {};
  // Decode-only rate (prefill excluded): B tokens per step at the median TPOT.
  if (o.workload === 'decode' && metrics.tpot_ms.p50 > 0) extra['decode_tok_s'] = (o.batch / metrics.tpot_ms.p50) * 1000;
  return { metrics, requests, workload: { batch: o.batch, output_len: out, reps: o.reps }, extraMetrics: extra };
}

export async function measureServing(o: BenchOptions, engine: Engine, progress: Progress): Promise<Measured> {
  const { runServingWorkload } = await import('./serving');
  const requests = o.requests ?? 16;
  const rate = o.rate ?? 0;
  const t0Us = nowUs();
  const r = await runServingWorkload(engine, {
    requests,
    rate,
    promptLen: o.promptLen,
    outputLen: o.outputLen,
    seed: o.seed,
    maxBatch: o.maxBatch,
    slo: o.slo,
    onProgress: (done, total) => progress({ message: `requests ${done}/${total}`, requestsDone: done, requestsTotal: total }),
  });
  const steps = r.detail.steps;
  const scheduler = { mode: r.detail.mode, notes: r.detail.notes, prefill_steps: steps.filter((x) => x.kind === 'prefill').length, decode_steps: steps.filter((x) => x.kind === 'decode').length, mean_decode_batch: mean(steps.filter((x) => x.kind === 'decode').map((x) => x.batch)) };
  return { metrics: r.metrics, requests: r.requests, workload: { requests, rate, output_len: o.outputLen, max_batch: o.maxBatch ?? null, arrival: rate > 0 ? 'poisson' : 'all at t0', scheduler }, extraMetrics: {}, t0Us, steps };
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Host-process spans of the scheduler's steps (row 0): prefill / decode, with the batch it ran. */
export function stepSpans(steps: ServingDetail['steps'], t0Us?: number): HostSpan[] {
  if (t0Us === undefined) return [];
  return steps.map((x) => ({ name: `${x.kind} ×${x.batch}`, cat: `scheduler.${x.kind}`, ts: t0Us + x.startMs * 1000, dur: (x.endMs - x.startMs) * 1000, tid: 0, args: { replica: x.replica, batch: x.batch, tokens_per_seq: x.S } }));
}

/** Host-process spans of a serving run: one row per request, queued then running. */
export function requestSpans(reqs: RequestTimeline[], t0Us?: number): HostSpan[] {
  if (t0Us === undefined) return [];
  const spans: HostSpan[] = [];
  for (const r of reqs) {
    const end = r.tokenMs.length ? r.tokenMs[r.tokenMs.length - 1] : r.firstScheduledMs;
    if (r.firstScheduledMs > r.arrivalMs) spans.push({ name: `req ${r.id} queued`, cat: 'queue', ts: t0Us + r.arrivalMs * 1000, dur: (r.firstScheduledMs - r.arrivalMs) * 1000, tid: r.id + 1 });
    spans.push({ name: `req ${r.id}`, cat: 'request', ts: t0Us + r.firstScheduledMs * 1000, dur: (end - r.firstScheduledMs) * 1000, tid: r.id + 1, args: { prompt: r.promptLen, output: r.outputLen, ttft_ms: r.tokenMs[0] !== undefined ? r.tokenMs[0] - r.arrivalMs : null } });
  }
  return spans;
}
