/**
 * One rank's part of a step, with its collectives (the math stays in the
 * segments; this file is the communication around them):
 *
 *   PP  micro-batches flow stage → stage: recv x from the previous stage,
 *       run the stage's segments, send x on. (B_m·S·H·4 bytes per boundary
 *       and micro-batch.) Stages work on different micro-batches at once,
 *       which is what fills the pipeline; time blocked in recv is the bubble.
 *   TP  Megatron's g operator: all-reduce of each sublayer's partial output
 *       (2 per layer, B·S·H·4 bytes each) and of the vocab-parallel
 *       embedding; the vocab-parallel logits are all-gathered (B·V·4 bytes)
 *       so the sampler sees the full distribution.
 *   SP  (ulysses / ring / usp) a prefill step's tokens are split over the sp
 *       ranks by the sequence layout (parallel/sequence.ts): each rank embeds
 *       and runs its MLPs on its own tokens; the attention blocks exchange
 *       what attention needs (worker/sp-attention.ts). The last token's
 *       logits are sent from the rank holding it to sp rank 0, which samples.
 *       Decode steps (fewer tokens than chunks) are replicated on every sp rank.
 *   Megatron-SP  (tp=N,sp_impl=megatron) as TP, but between sublayers each tp
 *       rank holds a sequence shard: the embedding is reduce-scattered, the
 *       sublayer blocks gather / scatter around their bodies (megatron-sp.ts).
 *   DP  nothing here: replicas never talk; the host routes requests.
 */
import type { BatchState, BlockState, Executor, SegmentTiming, StreamTensors } from '../runtime/executor';
import { recordSpan } from '../runtime/executor';
import type { Communicator } from '../comm/communicator';
import { splitEven } from '../parallel/split';
import type { Range } from '../parallel/split';
import { isSplit, ownerOf, seqRuns } from '../parallel/sequence';
import type { Chunking } from '../parallel/sequence';
import type { SpStepPlan } from './sp-attention';
import { toShardMajor } from './megatron-sp';
import { megatronPlan, SpHistory } from '../parallel/sequence';
import type { MegatronStepPlan } from '../parallel/sequence';

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
  sp?: { rank: number; size: number; ring: number; chunking: Chunking; group: Communicator | null } | null;
}

export interface MicroBatches {
  states: BatchState[];
  /** sequence range [start, end) of each micro-batch */
  ranges: [number, number][];
}

export function microBatches(exec: Executor, B: number, micro: number): MicroBatches {
  const m = Math.max(1, Math.min(micro, B));
  const ranges = Array.from({ length: m }, (_, i) => splitEven(B, m, i));
  return { states: ranges.map(([a, b]) => exec.newBatch(b - a)), ranges };
}

export interface StageTimes {
  computeMs: number;
  commMs: number;
  /** blocked waiting for the previous stage (pipeline bubble) */
  bubbleMs: number;
}

/**
 * Run S new tokens per sequence through this rank's stage for every micro-
 * batch. Returns the full-vocabulary logits (B,V) on the last stage, else null.
 */
export async function runStage(exec: Executor, mb: MicroBatches, S: number, tokens: Int32Array, links: StageLinks, vocab: number, times: StageTimes, trace: SegmentTiming[] = []): Promise<Float32Array | null> {
  const hidden = exec.hidden;
  const B = mb.ranges[mb.ranges.length - 1][1];
  let logits: Float32Array | null = null;
  const span = (segment: string, start: number, cat: SegmentTiming['cat']) => recordSpan(trace, segment, start, cat);
  let mg: MegatronStepPlan | null = null;
  const boundary = links.tp
    ? async (seg: { partial: 'delta' | 'x' | null; name: string }, _i: number, stream: StreamTensors) => {
        const t = performance.now();
        let op = 'all_reduce';
        if (seg.partial === 'delta' && stream.delta) await links.tp!.allReduce(stream.delta);
        else if (seg.partial === 'x' && mg?.mode === 'split') {
          // Megatron-SP: the vocab-parallel embedding is reduce-scattered into sequence shards
          const Bm = stream.x.length / (mg.S * hidden);
          stream.x = await links.tp!.reduceScatter(toShardMajor(stream.x, mg.shards, Bm, hidden), mg.shards.map(([x, y]) => Bm * (y - x) * hidden));
          op = 'reduce_scatter';
        } else if (seg.partial === 'x') await links.tp!.allReduce(stream.x);
        span(`${op} after ${seg.name}`, t, 'comm');
      }
    : undefined;

  for (let m = 0; m < mb.states.length; m++) {
    const [a, b] = mb.ranges[m];
    const Bm = b - a;
    const state = mb.states[m];
    const sp = links.sp ? spStep(links.sp, state, S) : null;
    mg = links.megatron && links.tp ? megatronPlan(S, links.tp.size, state.length) : null;
    const mine: Range[] = sp && sp.mode === 'split' ? sp.runs[links.sp!.rank] : [[0, S]];
    const Sl = mine.reduce((n, [s, e]) => n + e - s, 0);
    // what crosses a pipeline boundary: my SP tokens, or my Megatron-SP shard
    const Sx = mg && mg.mode === 'split' ? mg.shards[links.tp!.rank][1] - mg.shards[links.tp!.rank][0] : Sl;
    let input: Parameters<Executor['step']>[2];
    if (links.prev === null) {
      const ids = new BigInt64Array(Bm * Sl);
      let i = 0;
      for (let row = a; row < b; row++) for (const [s, e] of mine) for (let p = s; p < e; p++) ids[i++] = BigInt(tokens[row * S + p]);
      input = { ids };
    } else {
      const t = performance.now();
      const x = await links.pp!.recv(links.prev);
      times.bubbleMs += performance.now() - t;
      span('waiting for the previous stage', t, 'bubble');
      if (x.length !== Bm * Sx * hidden) throw new Error(`stage received ${x.length} floats, expected ${Bm}×${Sx}×${hidden}`);
      input = { stream: { x, delta: null } };
    }
    const t0 = performance.now();
    const first = trace.length;
    const out = await exec.step(state, Sl, input, boundary, trace, { advance: S, plan: sp ?? mg ?? undefined });
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
      await links.pp!.send(links.next!, out.stream.x);
      times.commMs += performance.now() - t;
      span('send to the next stage', t, 'comm');
      continue;
    }
    let part: Float32Array | null = out.logits;
    if (links.tp) {
      const t = performance.now();
      part = await gatherVocab(links.tp, out.logits, Bm, vocab);
      times.commMs += performance.now() - t;
      span('all_gather logits', t, 'comm');
    }
    if (sp && sp.mode === 'split') {
      // the last token's logits live on the rank holding it; sp rank 0 samples
      const holder = ownerOf(sp.runs, S - 1);
      const me = links.sp!.rank;
      const t = performance.now();
      if (holder !== 0 && me === holder) await links.sp!.group!.send(0, part);
      if (holder !== 0 && me === 0) part = await links.sp!.group!.recv(holder);
      if (holder !== 0 && (me === 0 || me === holder)) span('logits to sp rank 0', t, 'comm');
      times.commMs += performance.now() - t;
      if (me !== 0) part = null;
    } else if (sp && links.sp!.rank !== 0) {
      part = null;
    }
    if (!part) continue;
    if (!logits) logits = new Float32Array(B * vocab);
    logits.set(part, a * vocab);
  }
  return logits;
}

/** The layout of one SP step on this batch (the same on every sp rank). */
function spStep(sp: NonNullable<StageLinks['sp']>, state: BatchState, S: number): SpStepPlan {
  // what each ring member's K/V cache holds: a decode step's K/V goes where there is least
  let hist = state.blocks.get('sp.history') as (SpHistory & BlockState) | undefined;
  if (!hist) state.blocks.set('sp.history', (hist = Object.assign(new SpHistory(sp.size, sp.size / sp.ring, sp.chunking), { kvBytes: () => 0 })));
  const split = isSplit(S, sp.size, sp.chunking);
  const owner = split ? 0 : hist.owner();
  hist.advance(S);
  return { mode: split ? 'split' : 'replicated', past: state.length, S, runs: seqRuns(S, sp.size, sp.chunking), owner, cache: new Map() };
}

/** (B, V_r) on each TP rank → (B, V): all-gather, then interleave the vocab shards per row. */
async function gatherVocab(tp: Communicator, local: Float32Array, B: number, vocab: number): Promise<Float32Array> {
  const shards = Array.from({ length: tp.size }, (_, r) => splitEven(vocab, tp.size, r));
  const counts = shards.map(([s, e]) => B * (e - s));
  const all = await tp.allGather(local, counts);
  const out = new Float32Array(B * vocab);
  let off = 0;
  for (const [s, e] of shards) {
    const w = e - s;
    for (let b = 0; b < B; b++) out.set(all.subarray(off + b * w, off + (b + 1) * w), b * vocab + s);
    off += B * w;
  }
  return out;
}
