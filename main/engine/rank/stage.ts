/**
 * One rank's part of a step: its pipeline stage run over every micro-batch,
 * with the collectives each strategy puts between segments. The math lives
 * in the segments and blocks; each collective lives in its strategy's folder:
 *
 *   PP  recv the stream from the previous stage, run, send it on
 *       (parallel/pp/pipeline.ts); time blocked in recv is the bubble
 *   TP  all-reduce of each segment's partial output (Megatron's g), and the
 *       vocab-parallel logits all-gathered (parallel/tp/collectives.ts)
 *   SP  a prefill's tokens split over the sp ranks (parallel/sp/step.ts):
 *       each rank embeds and runs its MLPs on its own tokens, the attention
 *       blocks exchange what attention needs (parallel/sp/attention.ts), and
 *       the last token's logits go to sp rank 0, which samples
 *   Megatron-SP  as TP, but between sublayers each tp rank holds a sequence
 *       shard: the embedding is reduce-scattered here, the sublayer blocks
 *       gather / scatter around their bodies (parallel/sp/megatron/)
 *   EP  inside the MoE blocks (parallel/ep/block.ts)
 *   DP  nothing here: replicas never talk; the host routes requests
 */
import type { Communicator } from '../comm/communicator';
import type { Executor } from '../runtime/executor';
import { recordSpan } from '../runtime/stream';
import type { SegmentTiming, StepInput, StreamTensors } from '../runtime/stream';
import type { StepStats } from '../runtime/block';
import type { Range } from '../parallel/split';
import type { MicroBatches } from '../parallel/pp/pipeline';
import { recvFromPrevious, sendToNext } from '../parallel/pp/pipeline';
import { gatherVocab, reducePartial } from '../parallel/tp/collectives';
import { logitsToSampler, myRuns, spStep } from '../parallel/sp/step';
import type { SpLinks, SpStepPlan } from '../parallel/sp/step';
import { megatronPlan } from '../parallel/sp/megatron/plan';
import type { MegatronStepPlan } from '../parallel/sp/megatron/plan';
import { scatterSequence } from '../parallel/sp/megatron/collectives';

export interface StageLinks {
  /** tensor-parallel group (null when tp = 1) */
  tp: Communicator | null;
  /** pipeline chain and this rank's neighbours in it, as ranks of that group */
  pp: Communicator | null;
  prev: number | null;
  next: number | null;
  /** Megatron-SP (tp=N,sp_impl=megatron): sequence shards between sublayers on the tp ranks */
  megatron?: boolean;
  /** sequence parallelism (ulysses / ring / usp): this rank's place in its sp group and the group */
  sp?: SpLinks | null;
}

export interface StageTimes {
  computeMs: number;
  commMs: number;
  /** blocked waiting for the previous stage (pipeline bubble) */
  bubbleMs: number;
}

/**
 * Run S new tokens per sequence through this rank's stage for every micro-
 * batch. Returns the full-vocabulary logits (B,V) on the sampling rank of the
 * last stage, else null. Blocks add their per-step counters to `stats`.
 */
export async function runStage(exec: Executor, mb: MicroBatches, S: number, tokens: Int32Array, links: StageLinks, vocab: number, times: StageTimes, trace: SegmentTiming[] = [], stats?: StepStats): Promise<Float32Array | null> {
  const hidden = exec.hidden;
  const B = mb.ranges[mb.ranges.length - 1][1];
  let logits: Float32Array | null = null;
  let mg: MegatronStepPlan | null = null;
  const boundary = links.tp
    ? async (seg: { partial: 'delta' | 'x' | null; name: string }, _i: number, stream: StreamTensors) => {
        const t = performance.now();
        let op = 'all_reduce';
        if (seg.partial === 'x' && mg?.mode === 'split') {
          // Megatron-SP: the vocab-parallel embedding is reduce-scattered into sequence shards
          stream.x = await scatterSequence(links.tp!, stream.x, mg.shards, stream.x.length / (mg.S * hidden), hidden);
          op = 'reduce_scatter';
        } else await reducePartial(links.tp!, seg.partial, stream);
        recordSpan(trace, `${op} after ${seg.name}`, t, 'comm');
      }
    : undefined;

  for (let m = 0; m < mb.states.length; m++) {
    const [a, b] = mb.ranges[m];
    const Bm = b - a;
    const state = mb.states[m];
    const sp: SpStepPlan | null = links.sp ? spStep(links.sp, state, S) : null;
    mg = links.megatron && links.tp ? megatronPlan(S, links.tp.size, state.length) : null;
    const mine: Range[] = sp ? myRuns(links.sp!.rank, sp) : [[0, S]];
    const Sl = mine.reduce((n, [s, e]) => n + e - s, 0);
    // what crosses a pipeline boundary: my SP tokens, or my Megatron-SP shard
    const Sx = mg && mg.mode === 'split' ? mg.shards[links.tp!.rank][1] - mg.shards[links.tp!.rank][0] : Sl;
    let input: StepInput;
    if (links.prev === null) {
      input = { ids: tokenIds(tokens, S, a, b, mine, Sl) };
    } else {
      const t = performance.now();
      const x = await recvFromPrevious(links.pp!, links.prev, Bm * Sx * hidden, `${Bm}×${Sx}×${hidden}`);
      times.bubbleMs += performance.now() - t;
      recordSpan(trace, 'waiting for the previous stage', t, 'bubble');
      input = { stream: { x, delta: null } };
    }
    const t0 = performance.now();
    const first = trace.length;
    const out = await exec.step(state, Sl, input, boundary, trace, { advance: S, plan: sp ?? mg ?? undefined, stats });
    times.computeMs += performance.now() - t0;
    // collectives inside the step (TP boundaries, SP attention, MoE dispatch) count as communication, not compute
    for (let i = first; i < trace.length; i++) {
      if (trace[i].cat === 'comm') {
        times.computeMs -= trace[i].ms;
        times.commMs += trace[i].ms;
      }
    }
    if ('stream' in out) {
      const t = performance.now();
      await sendToNext(links.pp!, links.next!, out.stream.x);
      times.commMs += performance.now() - t;
      recordSpan(trace, 'send to the next stage', t, 'comm');
      continue;
    }
    let part: Float32Array | null = out.logits;
    if (links.tp) {
      const t = performance.now();
      part = await gatherVocab(links.tp, out.logits, Bm, vocab);
      times.commMs += performance.now() - t;
      recordSpan(trace, 'all_gather logits', t, 'comm');
    }
    if (sp) {
      const moved = await logitsToSampler(links.sp!, sp, part, trace);
      times.commMs += moved.ms;
      part = moved.logits;
    }
    if (!part) continue;
    if (!logits) logits = new Float32Array(B * vocab);
    logits.set(part, a * vocab);
  }
  return logits;
}

/** The ids of rows [a, b) at the step offsets this rank holds, as the embedding's (B_m, S_l) input. */
function tokenIds(tokens: Int32Array, S: number, a: number, b: number, mine: Range[], Sl: number): BigInt64Array {
  const ids = new BigInt64Array((b - a) * Sl);
  let i = 0;
  for (let row = a; row < b; row++) for (const [s, e] of mine) for (let p = s; p < e; p++) ids[i++] = BigInt(tokens[row * S + p]);
  return ids;
}
