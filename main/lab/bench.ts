/**
 * A benchmark: each parallel spec runs on the same seeded workload and
 * becomes one run folder (run.json, schema paralab.run/1, and trace.json).
 *
 * Workloads:
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
import { Engine } from '../engine/engine';
import type { RankInit } from '../engine/worker/protocol';
import { Rng } from '../engine/sample/rng';
import { measureReadBandwidth } from '../engine/runtime/bandwidth';
import { paramCount } from '../engine/model/types';
import type { ModelConfig } from '../engine/model/types';
import { formatSpec, parseSpec } from '../engine/parallel/spec';
import { TOLERANCE, compareOutputs, type GreedyOutput } from '../engine/verify';
import type { DeviceKindName, RunRecord, WorkloadKind } from './contract';
import { servingMetrics, type RequestTimeline, type PrefillSpan, type ServingMetrics, type Slo } from './metrics';
import { commRows, hostFacts, rankTime, rewriteRecord, runId, runtimeVersions, writeRunFolder, type LedgerOp } from './record';
import { kvCacheBytes, workloadActivationPeak, type ShardShape } from './memory';
import { StepRecorder, buildTrace, nowUs, type HostSpan, type RankSpan } from './trace';
import type { ServingDetail } from './serving';

export type { WorkloadKind };

export interface BenchOptions {
  model: string;
  specs: string[];
  workload: WorkloadKind;
  promptLen: number;
  outputLen: number;
  batch: number;
  reps: number;
  /** serving */
  requests?: number;
  rate?: number;
  maxBatch?: number;
  slo?: Slo;
  threadsPerRank?: number;
  device?: DeviceKindName;
  seed: number;
  verify?: boolean;
  ceiling?: boolean;
  outDir: string;
  signal?: AbortSignal;
  onProgress?: (p: BenchProgress) => void;
  /** each run folder as soon as it is written */
  onRecord?: (r: RunRecord, dir: string) => void;
}

export interface BenchProgress {
  /** specs (variants) finished, and how many there are */
  done: number;
  total: number;
  label: string;
  message: string;
  /** serving: requests finished of this spec's workload */
  requestsDone?: number;
  requestsTotal?: number;
}

export interface BenchResult {
  records: RunRecord[];
  dirs: string[];
}

/** The prompts of a prefill / decode workload: B × L token ids from the seed (special low ids skipped). */
export function workloadPrompts(B: number, L: number, vocab: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: B }, () => Array.from({ length: L }, () => 4 + Math.floor(rng.next() * (vocab - 4))));
}

/** `single` first (the reference), then the others in the order given, without duplicates. */
export function orderSpecs(specs: string[]): string[] {
  const canon = specs.map((s) => formatSpec(parseSpec(s)));
  const out = ['single'];
  for (const s of canon) if (!out.includes(s)) out.push(s);
  return out;
}

interface Variant {
  spec: string;
  label: string;
  cut?: RankInit['cut'];
}

type Reference = GreedyOutput;


export class BenchCancelled extends Error {
  constructor() {
    super('the benchmark was cancelled');
    this.name = 'BenchCancelled';
  }
}

export async function bench(o: BenchOptions): Promise<BenchResult> {
  const variants: Variant[] = orderSpecs(o.specs).map((spec) => ({ spec, label: spec }));
  if (o.ceiling) variants.push({ spec: 'single', label: 'single/sublayer-segments', cut: 'sublayer' }, { spec: 'single', label: 'single/monolithic', cut: 'none' });
  const records: RunRecord[] = [];
  const dirs: string[] = [];
  let reference: Reference | null = null;
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
  if (o.ceiling) {
    const threads = records[0]?.device.threads_per_rank ?? 1;
    const bw = await measureReadBandwidth(threads);
    records.forEach((r, i) => {
      // Every weight is streamed once per decode step except the embedding
      // table, of which only B rows are read (weights are fp32 in memory).
      const bytes = 4 * (r.model.params - Number(r.model['vocab']) * r.model.hidden);
      r['roofline'] = { read_gb_s: bw / 1e9, weight_bytes_per_step: bytes, decode_tok_s: (o.batch * bw) / bytes };
      rewriteRecord(dirs[i], r);
    });
  }
  return { records, dirs };
}

/** New tokens a measured rep generates per sequence (a prefill workload stops at the first). */
const measuredOutput = (o: BenchOptions) => (o.workload === 'prefill' ? 1 : o.outputLen);
/** Greedy steps compared with single under --verify. */
const verifySteps = (o: BenchOptions) => Math.max(1, Math.min(o.outputLen, 8));

/**
 * Positions one sequence fills (the last new token is never fed back): the
 * engine is built for exactly this, and Engine.start refuses it before any
 * rank starts when the model's context is shorter.
 */
function positionsNeeded(o: BenchOptions): number {
  return o.promptLen + Math.max(measuredOutput(o), o.verify ? verifySteps(o) : 1) - 1;
}

/** Optional engine features (the lead's tracing, KV accounting, MoE expert load): used when present. */
interface EngineExtras {
  tracing?: boolean;
  drainSpans?: () => RankSpan[][];
  kvBytes?: () => number[];
  expertLoad?: () => { tokens: number[][]; byRank?: number[][][] } | null;
}

async function runOne(o: BenchOptions, v: Variant, reference: Reference | null, progress: (p: { message: string; requestsDone?: number; requestsTotal?: number }) => void): Promise<{ record: RunRecord; dir: string; reference?: Reference }> {
  const engine = await Engine.start({
    model: o.model,
    parallel: v.spec,
    threadsPerRank: o.threadsPerRank,
    device: o.device,
    cut: v.cut,
    maxSeq: positionsNeeded(o),
    onProgress: (message) => progress({ message }),
  });
  const extras = engine as unknown as EngineExtras;
  const abort = () => void engine.close().catch(() => undefined);
  o.signal?.addEventListener('abort', abort);
  try {
    const c = engine.config;
    const world = engine.spec.world;
    const work = workloadPrompts(o.batch, o.promptLen, c.vocabSize, o.seed);
    progress({ message: 'warm-up' });
    // Warm-up: first runs pay for allocator growth and weight pre-packing.
    // Twice: onnxruntime's memory patterns record a new input shape on its
    // first run and allocate the planned block on the second, so the second
    // run of a shape still page-faults (measured: tp=2 prefill of 2048 tokens
    // on synth-llama-small, ~125k minor faults per rank, 4.5 s against 2.9 s
    // from the third run on). One warm-up left the first measured rep of every
    // multi-rank spec ~40 % slow.
    // (one decode step too, unless the workload has none: then a prompt may fill the whole context)
    for (let i = 0; i < 2; i++) {
      await engine.generate(o.workload === 'serving' ? [work[0] ?? workloadPrompts(1, o.promptLen, c.vocabSize, o.seed)[0]] : work, { maxNewTokens: Math.min(2, measuredOutput(o)), ignoreEos: true });
    }
    if (o.signal?.aborted) throw new BenchCancelled();
    const tracing = typeof extras.drainSpans === 'function';
    if (tracing) {
      extras.tracing = true;
      extras.drainSpans!();
    }
    engine.resetTimes();
    await engine.ledgers(true);
    const recorder = new StepRecorder(world);
    recorder.rebase(engine.rankTimes);

    progress({ message: 'measuring' });
    let measured: Measured;
    if (o.workload === 'serving') {
      // Steps happen inside the scheduler: sample the ranks' totals every few ms instead.
      const timer = setInterval(() => recorder.sample(engine.rankTimes), 2);
      try {
        measured = await measureServing(o, engine, progress);
      } finally {
        clearInterval(timer);
      }
      recorder.sample(engine.rankTimes);
    } else measured = await measureBatch(o, engine, work, () => recorder.sample(engine.rankTimes));
    const mem = engine.cluster.memory();
    const ledgers = (await engine.ledgers()) as (Partial<Record<string, LedgerOp>> | null)[];
    // Snapshots of the measured steps, before the correctness check adds its own.
    const rankTimes = engine.rankTimes.map((t) => ({ ...t }));
    const expected = structuredClone(engine.expectedComm) as Partial<Record<string, Partial<LedgerOp>>>[];
    const spans = tracing ? extras.drainSpans!() : null;
    if (tracing) extras.tracing = false;
    const expertLoad = typeof extras.expertLoad === 'function' ? extras.expertLoad() : null;
    const kvMeasured = typeof extras.kvBytes === 'function' ? extras.kvBytes() : null;

    // Correctness on this spec's own engine (after measuring, so it does not disturb the numbers).
    let correctness: RunRecord['correctness'] = { checked: false, note: 'not checked: run with --verify' };
    let ownRef: Reference | undefined;
    if (o.verify && !v.cut) {
      progress({ message: 'verifying against single' });
      const n = verifySteps(o);
      const { outputs } = await engine.generate([work[0] ?? workloadPrompts(1, o.promptLen, c.vocabSize, o.seed)[0]], { maxNewTokens: n, sampling: { greedy: true }, wantLogits: true, ignoreEos: true });
      const mine: Reference = { tokens: outputs[0].tokens, logits: outputs[0].logits };
      const tolerance = TOLERANCE[c.dtype] ?? 1e-3;
      if (v.spec === 'single') {
        ownRef = mine;
        correctness = { checked: true, tokens_equal: true, max_abs_logit_diff: 0, first_mismatch: null, tolerance, passed: true, reference: true, tokens_compared: mine.tokens.length, note: 'single is the reference the other specs are compared with' };
      } else if (reference) {
        const cmp = compareOutputs(reference, mine);
        const passed = cmp.tokens_equal && cmp.max_abs_logit_diff <= tolerance;
        correctness = { checked: true, ...cmp, tolerance, passed, reference: false, tokens_compared: mine.tokens.length, note: `greedy tokens and logits of ${n} steps on the first prompt vs single` };
      } else {
        correctness = { checked: false, note: 'no single reference in this benchmark' };
      }
    }

    const ranks = engine.cluster.ready.map((r, i) => {
      const shape = shardShape(c, engine, i, r.layers);
      const seqs = o.workload === 'serving' ? Math.ceil(Math.min(o.requests ?? 1, o.maxBatch ?? o.requests ?? 1) / engine.spec.dp) : Math.ceil(o.batch / engine.spec.dp);
      const outLen = measuredOutput(o);
      const kvAccounted = kvCacheBytes(shape, seqs, o.promptLen + outLen);
      return {
        rank: i,
        pid: r.pid,
        coord: engine.mesh.place(i).coord,
        layers: r.layers,
        segments: r.segments,
        load_ms: r.loadMs,
        memory: {
          weights_bytes: r.weightBytes,
          kv_cache_bytes: kvMeasured?.[i] ?? kvAccounted,
          kv_cache_source: kvMeasured ? 'engine' : 'accounted',
          activation_peak_bytes: workloadActivationPeak(shape, seqs, o.promptLen, outLen),
          rss_peak_bytes: mem[i]?.rssPeak ?? 0,
        },
        time: rankTime(rankTimes[i], ledgers[i]),
      };
    });

    const m = measured.metrics;
    const spec = engine.spec;
    const record: RunRecord = {
      schema: 'paralab.run/1',
      id: runId(v.label),
      created: new Date().toISOString(),
      label: v.label,
      model: {
        id: engine.modelId,
        arch: c.hfArchitecture,
        params: paramCount(c),
        layers: c.layers,
        hidden: c.hidden,
        heads: c.heads,
        kv_heads: c.kvHeads,
        head_dim: c.headDim,
        ffn: c.ffn,
        vocab: c.vocabSize,
        experts: c.moe?.experts ?? 0,
        top_k: c.moe?.topK ?? 0,
        dtype: c.dtype,
      },
      parallel: { spec: formatSpec(spec), world: spec.world, dp: spec.dp, pp: spec.pp, tp: spec.tp, sp: spec.sp, ep: spec.ep, micro: spec.micro, sp_impl: spec.sp > 1 || spec.spImpl === 'megatron' ? spec.spImpl : null, mesh: engine.mesh.describe(), segments: v.cut ?? 'collectives', notes: engine.notes },
      device: { kind: engine.device, threads_per_rank: engine.threadsPerRank, ...hostFacts(), versions: runtimeVersions() },
      workload: { kind: o.workload, seed: o.seed, prompt_len: o.promptLen, ...measured.workload },
      metrics: {
        ttft_ms: m.ttft_ms,
        tpot_ms: m.tpot_ms,
        itl_ms: m.itl_ms,
        e2el_ms: m.e2el_ms,
        output_tok_s: m.output_tok_s,
        prefill_tok_s: m.prefill_tok_s,
        request_s: m.request_s,
        ...(m.goodput_req_s !== null ? { goodput_req_s: m.goodput_req_s, slo: m.slo } : {}),
        queue_ms: m.queue_ms,
        completed: m.completed,
        duration_ms: m.duration_ms,
        total_input_tokens: m.total_input_tokens,
        total_output_tokens: m.total_output_tokens,
        ...measured.extraMetrics,
      },
      ranks,
      comm: commRows(ledgers, expected),
      correctness,
      ...(expertLoad ? { expert_load: { tokens: expertLoad.tokens, balancedness: expertLoad.tokens.map(balancedness), ...(expertLoad.byRank ? { by_rank: expertLoad.byRank } : {}) } } : {}),
      trace: { source: spans ? 'engine' : recorder.spans.some((x) => x.length > 0) ? 'reconstructed' : 'none', file: 'trace.json' },
    };
    const hostSpans = [...requestSpans(measured.requests, measured.t0Us), ...stepSpans(measured.steps ?? [], measured.t0Us)];
    const trace = buildTrace({
      ranks: engine.cluster.ready.map((_, i) => {
        const p = engine.mesh.place(i).coord;
        return { label: `rank ${i} · dp${p.dp} pp${p.pp} sp${p.sp} tp${p.tp}`, spans: spans?.[i] ?? recorder.spans[i] };
      }),
      host: hostSpans,
      source: record.trace && typeof record.trace === 'object' ? String((record.trace as { source: string }).source) : 'none',
    });
    const dir = writeRunFolder(o.outDir, record, trace);
    return { record, dir, reference: ownRef };
  } catch (e) {
    if (o.signal?.aborted) throw new BenchCancelled();
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', abort);
    await engine.close().catch(() => undefined);
  }
}

/** max ÷ mean of the tokens routed to each expert of one layer (1 = perfectly balanced). */
export function balancedness(perExpert: number[]): number {
  const mean = perExpert.reduce((a, b) => a + b, 0) / Math.max(1, perExpert.length);
  return mean > 0 ? Math.max(...perExpert) / mean : 0;
}

function shardShape(c: ModelConfig, engine: Engine, rank: number, layers: [number, number]): ShardShape {
  const ffn = c.moe ? c.moe.expertFfn * c.moe.topK + c.moe.sharedExpertFfn : c.ffn;
  const spec = engine.spec;
  return { layers, hidden: c.hidden, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, ffn, vocab: c.vocabSize, tp: spec.tp, head: engine.roles[rank]?.plan.head ?? false, sp: spec.sp, megatronSp: spec.spImpl === 'megatron' && spec.tp > 1 };
}

type Measured = { metrics: ServingMetrics; requests: RequestTimeline[]; workload: Record<string, unknown>; extraMetrics: Record<string, number>; t0Us?: number; steps?: ServingDetail['steps'] };

/**
 * prefill / decode: `reps` batches back to back on one virtual clock. Every
 * sequence is a request arriving when its batch starts; its token times are
 * taken on the host as each step's tokens come back (onToken), per sequence,
 * so DP replicas each have their own timeline.
 */
async function measureBatch(o: BenchOptions, engine: Engine, work: number[][], afterStep: () => void): Promise<Measured> {
  const out = measuredOutput(o);
  const requests: RequestTimeline[] = [];
  const prefill: PrefillSpan[] = [];
  let offset = 0;
  const tpotPerBatch: number[] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    if (o.signal?.aborted) throw new BenchCancelled();
    const tokenMs: number[][] = work.map(() => []);
    const t0 = performance.now();
    const { timeline } = await engine.generate(work, {
      maxNewTokens: out,
      ignoreEos: true,
      onToken: (seq) => {
        tokenMs[seq].push(offset + performance.now() - t0);
        afterStep(); // the ranks' totals already include this step; ranks without a new step are skipped
      },
    });
    afterStep();
    work.forEach((p, i) => {
      requests.push({ id: requests.length, arrivalMs: offset, firstScheduledMs: offset, tokenMs: tokenMs[i], promptLen: p.length, outputLen: tokenMs[i].length, finish: 'length' });
    });
    prefill.push({ startMs: offset, endMs: offset + timeline.prefillMs, tokens: work.length * o.promptLen });
    const t = timeline.tokenMs;
    if (t.length > 1) tpotPerBatch.push((t[t.length - 1] - t[0]) / (t.length - 1));
    offset += timeline.totalMs;
  }
  const metrics = servingMetrics(requests, { durationMs: offset, prefill, slo: o.slo });
  const extra: Record<string, number> = {};
  // Decode-only rate (prefill excluded): B tokens per step at the median TPOT.
  if (o.workload === 'decode' && metrics.tpot_ms.p50 > 0) extra['decode_tok_s'] = (o.batch / metrics.tpot_ms.p50) * 1000;
  return { metrics, requests, workload: { batch: o.batch, output_len: out, reps: o.reps }, extraMetrics: extra };
}

async function measureServing(o: BenchOptions, engine: Engine, progress: (p: { message: string; requestsDone?: number; requestsTotal?: number }) => void): Promise<Measured> {
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
function stepSpans(steps: ServingDetail['steps'], t0Us?: number): HostSpan[] {
  if (t0Us === undefined) return [];
  return steps.map((x) => ({ name: `${x.kind} ×${x.batch}`, cat: `scheduler.${x.kind}`, ts: t0Us + x.startMs * 1000, dur: (x.endMs - x.startMs) * 1000, tid: 0, args: { replica: x.replica, batch: x.batch, tokens_per_seq: x.S } }));
}

/** Host-process spans of a serving run: one row per request, queued then running. */
function requestSpans(reqs: RequestTimeline[], t0Us?: number): HostSpan[] {
  if (t0Us === undefined) return [];
  const spans: HostSpan[] = [];
  for (const r of reqs) {
    const end = r.tokenMs.length ? r.tokenMs[r.tokenMs.length - 1] : r.firstScheduledMs;
    if (r.firstScheduledMs > r.arrivalMs) spans.push({ name: `req ${r.id} queued`, cat: 'queue', ts: t0Us + r.arrivalMs * 1000, dur: (r.firstScheduledMs - r.arrivalMs) * 1000, tid: r.id + 1 });
    spans.push({ name: `req ${r.id}`, cat: 'request', ts: t0Us + r.firstScheduledMs * 1000, dur: (end - r.firstScheduledMs) * 1000, tid: r.id + 1, args: { prompt: r.promptLen, output: r.outputLen, ttft_ms: r.tokenMs[0] !== undefined ? r.tokenMs[0] - r.arrivalMs : null } });
  }
  return spans;
}
