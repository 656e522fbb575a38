/**
 * A benchmark: each parallel spec runs on the same seeded workload and
 * becomes one run folder (run.json, schema paralab.run/1, and trace.json).
 *
 * Workloads (bench-measure.ts):
 *   prefill  B prompts of L tokens, one token out (ttft = the prefill), `reps` times
 *   decode   B sequences generating O tokens after an L-token prompt, `reps` times
 *   serving  R requests arriving as a Poisson process at QPS, continuous
 *            batching in the scheduler (main/lab/serving.ts)
 * Same seed → same prompts / arrivals for every spec, so specs are compared on
 * identical work. Metrics use vLLM's names and meanings (main/lab/metrics.ts);
 * for prefill / decode every sequence of a batch is a request that arrived
 * when its batch started.
 *
 * With `verify`, `single` runs first and its greedy tokens and logits on the
 * first prompt become the reference each spec's own engine is compared with
 * (DESIGN.md, correctness contract: identical tokens, |Δlogit| within the
 * dtype's tolerance). With `ceiling`, `single` is also run cut at every
 * sublayer and as one monolithic graph, and the decode roofline is recorded.
 */
import { Engine } from '../engine/host/engine';
import { parseSpec } from '../engine/parallel/spec';
import type { RankInit } from '../engine/rank/protocol';
import { measureReadBandwidth } from '../engine/runtime/bandwidth';
import { TOLERANCE, compareOutputs, type GreedyOutput } from '../engine/host/verify';
import type { RunRecord } from './contract';
import { rewriteRecord, writeRunFolder } from './record';
import { sweepTempFolders } from './durable';
import { BenchCancelled, measuredOutput, orderSpecs, positionsNeeded, verifySteps, workloadPrompts } from './bench-options';
import type { BenchOptions, BenchResult } from './bench-options';
import { measureBatch, measureServing } from './bench-measure';
import type { Measured, Progress } from './bench-measure';
import { buildRecord, snapshot } from './bench-record';

export { BenchCancelled, orderSpecs, workloadPrompts } from './bench-options';
export type { BenchOptions, BenchProgress, BenchResult, WorkloadKind } from './bench-options';
export { balancedness } from './bench-record';

interface Variant {
  spec: string;
  label: string;
  cut?: RankInit['cut'];
  /** false: PP without overlap across steps (the engine's default is on) */
  ppOverlap?: false;
}

type Reference = GreedyOutput;

export async function bench(o: BenchOptions): Promise<BenchResult> {
  const variants: Variant[] = orderSpecs(o.specs).map((spec) => ({ spec, label: spec }));
  if (o.ppCompare) for (const v of [...variants]) if (parseSpec(v.spec).pp > 1) variants.push({ spec: v.spec, label: `${v.spec}/no-overlap`, ppOverlap: false });
  if (o.ceiling) variants.push({ spec: 'single', label: 'single/sublayer-segments', cut: 'sublayer' }, { spec: 'single', label: 'single/monolithic', cut: 'none' });
  const records: RunRecord[] = [];
  const dirs: string[] = [];
  let reference: Reference | null = null;
  sweepTempFolders(o.outDir);
  for (const [i, v] of variants.entries()) {
    if (o.signal?.aborted) throw new BenchCancelled();
    o.onProgress?.({ done: i, total: variants.length, label: v.label, message: 'starting' });
    const out = await runOne(o, v, reference, (p) => o.onProgress?.({ done: i, total: variants.length, label: v.label, ...p }));
    if (v.spec === 'single' && !v.cut && out.reference) reference = out.reference;
    records.push(out.record);
    dirs.push(out.dir);
    o.onRecord?.(out.record, out.dir);
    o.onProgress?.({ done: i + 1, total: variants.length, label: v.label, message: 'done' });
  }
  if (o.ceiling) await addRoofline(o, records, dirs);
  return { records, dirs };
}

/**
 * The decode roofline beside each record: every weight is streamed once per
 * decode step except the embedding table, of which only B rows are read
 * (weights are fp32 in memory).
 */
async function addRoofline(o: BenchOptions, records: RunRecord[], dirs: string[]): Promise<void> {
  const bw = await measureReadBandwidth(records[0]?.device.threads_per_rank ?? 1);
  records.forEach((r, i) => {
    const bytes = 4 * (r.model.params - Number(r.model['vocab']) * r.model.hidden);
    r['roofline'] = { read_gb_s: bw / 1e9, weight_bytes_per_step: bytes, decode_tok_s: (o.batch * bw) / bytes };
    rewriteRecord(dirs[i], r);
  });
}

async function runOne(o: BenchOptions, v: Variant, reference: Reference | null, progress: Progress): Promise<{ record: RunRecord; dir: string; reference?: Reference }> {
  const engine = await Engine.start({
    model: o.model,
    parallel: v.spec,
    threadsPerRank: o.threadsPerRank,
    timeoutMs: o.timeoutMs,
    device: o.device,
    cut: v.cut,
    maxSeq: positionsNeeded(o),
    onProgress: (message) => progress({ message }),
  });
  if (v.ppOverlap === false) engine.ppOverlap = false;
  const abort = () => void engine.close().catch(() => undefined);
  o.signal?.addEventListener('abort', abort);
  try {
    const work = workloadPrompts(o.batch, o.promptLen, engine.config.vocabSize, o.seed);
    const first = work[0] ?? workloadPrompts(1, o.promptLen, engine.config.vocabSize, o.seed)[0];
    progress({ message: 'warm-up' });
    await warmUp(o, engine, work, first);
    if (o.signal?.aborted) throw new BenchCancelled();
    engine.meter.tracing = true;
    engine.meter.drainSpans();
    engine.meter.reset();
    await engine.ledgers(true);
    progress({ message: 'measuring' });
    const measured: Measured = o.workload === 'serving' ? await measureServing(o, engine, progress) : await measureBatch(o, engine, work);
    // What the measured steps did, before the correctness check adds its own.
    const snap = await snapshot(engine);
    engine.meter.tracing = false;
    const { correctness, ownRef } = await checkCorrectness(o, v, engine, first, reference, progress);
    const { record, trace } = buildRecord(o, v.label, v.cut, engine, measured, snap, correctness);
    return { record, dir: writeRunFolder(o.outDir, record, trace), reference: ownRef };
  } catch (e) {
    if (o.signal?.aborted) throw new BenchCancelled();
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', abort);
    await engine.close().catch(() => undefined);
  }
}

/**
 * First runs pay for allocator growth and weight pre-packing. Twice:
 * onnxruntime's memory patterns record a new input shape on its first run
 * and allocate the planned block on the second, so the second run of a
 * shape still page-faults (measured: tp=2 prefill of 2048 tokens on
 * synth-llama-small, ~125k minor faults per rank, 4.5 s against 2.9 s from
 * the third run on). One warm-up left the first measured rep of every
 * multi-rank spec ~40 % slow. One decode step too, unless the workload has
 * none: then a prompt may fill the whole context.
 */
async function warmUp(o: BenchOptions, engine: Engine, work: number[][], first: number[]): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await engine.generate(o.workload === 'serving' ? [first] : work, { maxNewTokens: Math.min(2, measuredOutput(o)), ignoreEos: true });
  }
}

/** Correctness on this spec's own engine (after measuring, so it does not disturb the numbers). */
async function checkCorrectness(o: BenchOptions, v: Variant, engine: Engine, prompt: number[], reference: Reference | null, progress: Progress): Promise<{ correctness: RunRecord['correctness']; ownRef?: Reference }> {
  if (!o.verify || v.cut) return { correctness: { checked: false, note: 'not checked: run with --verify' } };
  progress({ message: 'verifying against single' });
  const n = verifySteps(o);
  const { outputs } = await engine.generate([prompt], { maxNewTokens: n, sampling: { greedy: true }, wantLogits: true, ignoreEos: true });
  const mine: Reference = { tokens: outputs[0].tokens, logits: outputs[0].logits };
  const tolerance = TOLERANCE[engine.config.dtype] ?? 1e-3;
  if (v.spec === 'single') {
    return { ownRef: mine, correctness: { checked: true, tokens_equal: true, max_abs_logit_diff: 0, first_mismatch: null, tolerance, passed: true, reference: true, tokens_compared: mine.tokens.length, note: 'single is the reference the other specs are compared with' } };
  }
  if (!reference) return { correctness: { checked: false, note: 'no single reference in this benchmark' } };
  const cmp = compareOutputs(reference, mine);
  const passed = cmp.tokens_equal && cmp.max_abs_logit_diff <= tolerance;
  return { correctness: { checked: true, ...cmp, tolerance, passed, reference: false, tokens_compared: mine.tokens.length, note: `greedy tokens and logits of ${n} steps on the first prompt vs single` } };
}
