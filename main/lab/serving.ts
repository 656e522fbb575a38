/**
 * The `serving` workload: R requests arriving as a Poisson process at `rate`
 * requests/s, served with continuous batching (main/engine/host/serving.ts), and
 * measured with vLLM's metrics (metrics.ts).
 *
 * The workload is a pure function of its options and the vocabulary size:
 * the same seed gives the same arrival times, prompt ids and lengths for
 * every parallel spec, so specs are compared on identical work. Arrival gaps
 * are exponential with mean 1/rate (vLLM's `get_request` with burstiness 1);
 * rate 0 (or ∞) means every request arrives at the start. Arrivals are real
 * wall-clock: a request cannot join before its arrival time.
 */
import type { Engine } from '../engine/host/engine';
import { serve } from '../engine/host/serving';
import type { ServeResult } from '../engine/host/serving';
import { Rng } from '../engine/sample/rng';
import { servingMetrics } from './metrics';
import type { RequestTimeline, ServingMetrics, Slo } from './metrics';

export type { RequestTimeline, ServingMetrics } from './metrics';

export interface WorkloadOptions {
  requests: number;
  /** requests / s; 0 or Infinity: all arrive at once */
  rate: number;
  promptLen: number;
  outputLen: number;
  /** when given, lengths are drawn uniformly from [promptLen, promptLenMax] (and likewise for outputs) */
  promptLenMax?: number;
  outputLenMax?: number;
  seed: number;
}

export interface WorkloadRequest {
  id: number;
  arrivalMs: number;
  prompt: number[];
  outputLen: number;
}

/** Uniform integer in [lo, hi]. */
function uniformInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng.next() * (hi - lo + 1));
}

/**
 * The requests of a workload. Independent streams (derived from the seed)
 * for arrivals, lengths and prompt ids, so changing one option leaves the
 * others' draws unchanged.
 */
export function makeWorkload(o: WorkloadOptions, vocab: number): WorkloadRequest[] {
  if (!Number.isInteger(o.requests) || o.requests < 1) throw new Error(`requests must be a positive integer, got ${o.requests}`);
  if (!(o.rate >= 0)) throw new Error(`rate must be ≥ 0 requests/s (0 = all at once), got ${o.rate}`);
  const pMax = o.promptLenMax ?? o.promptLen;
  const oMax = o.outputLenMax ?? o.outputLen;
  if (!Number.isInteger(o.promptLen) || o.promptLen < 1 || pMax < o.promptLen) throw new Error(`prompt length must be ≥ 1 (and max ≥ min), got ${o.promptLen}..${pMax}`);
  if (!Number.isInteger(o.outputLen) || o.outputLen < 1 || oMax < o.outputLen) throw new Error(`output length must be ≥ 1 (and max ≥ min), got ${o.outputLen}..${oMax}`);
  const arrivals = new Rng(o.seed);
  const lengths = new Rng((o.seed ^ 0x5bd1e995) >>> 0);
  const ids = new Rng((o.seed + 0x9e3779b9) >>> 0);
  const out: WorkloadRequest[] = [];
  let t = 0;
  for (let i = 0; i < o.requests; i++) {
    // The first request arrives at t0; each next one after an exponential gap.
    if (i > 0 && o.rate > 0 && Number.isFinite(o.rate)) t += (-Math.log(1 - arrivals.next()) / o.rate) * 1000;
    const promptLen = uniformInt(lengths, o.promptLen, pMax);
    const outputLen = uniformInt(lengths, o.outputLen, oMax);
    // Skip the few special ids at the bottom of the vocabulary (as bench.ts does).
    const prompt = Array.from({ length: promptLen }, () => 4 + Math.floor(ids.next() * (vocab - 4)));
    out.push({ id: i, arrivalMs: t, prompt, outputLen });
  }
  return out;
}

export interface ServingRunOptions {
  requests: number;
  rate: number;
  promptLen: number;
  outputLen: number;
  seed: number;
  /** most sequences in one replica's running batch (default 16) */
  maxBatch?: number;
  slo?: { ttftMs?: number; tpotMs?: number };
  onProgress?: (done: number, total: number) => void;
  promptLenMax?: number;
  outputLenMax?: number;
}

export interface ServingRun {
  metrics: ServingMetrics;
  requests: RequestTimeline[];
}

/** Extra detail of a serving run, for reports: how the engine scheduled it. */
export interface ServingDetail {
  mode: ServeResult['mode'];
  notes: string[];
  steps: ServeResult['steps'];
  /** generated ids per request (for correctness checks across specs) */
  tokens: number[][];
}

/**
 * Run the workload on a started engine (the caller starts and closes it, and
 * may warm it up first). Output lengths are exact: EOS is ignored, as in
 * vLLM's random-dataset benchmarks with --ignore-eos.
 */
export async function runServingWorkload(engine: Engine, o: ServingRunOptions): Promise<ServingRun & { detail: ServingDetail }> {
  const work = makeWorkload(o, engine.config.vocabSize);
  const total = work.length;
  o.onProgress?.(0, total);
  const res = await serve(
    engine,
    work.map((w) => ({ id: w.id, arrivalMs: w.arrivalMs, prompt: w.prompt, maxNewTokens: w.outputLen })),
    { maxBatch: o.maxBatch, ignoreEos: true, onFinish: (_r, done) => o.onProgress?.(done, total) },
  );
  const requests = timelinesOf(res);
  const prefill = res.steps.filter((s) => s.kind === 'prefill').map((s) => ({ startMs: s.startMs, endMs: s.endMs, tokens: s.batch * s.S }));
  const slo: Slo | null = o.slo ? { ttftMs: o.slo.ttftMs, tpotMs: o.slo.tpotMs } : null;
  const metrics = servingMetrics(requests, { durationMs: res.durationMs, prefill, slo });
  return { metrics, requests, detail: { mode: res.mode, notes: res.notes, steps: res.steps, tokens: res.requests.map((r) => r.tokens) } };
}

export function timelinesOf(res: ServeResult): RequestTimeline[] {
  return res.requests.map((r) => ({
    id: r.id,
    arrivalMs: r.arrivalMs,
    firstScheduledMs: r.firstScheduledMs,
    tokenMs: r.tokenMs,
    promptLen: r.promptLen,
    outputLen: r.tokens.length,
    finish: r.finish,
    replica: r.replica,
  }));
}
