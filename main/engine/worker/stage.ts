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
 *   DP  nothing here: replicas never talk; the host routes requests.
 */
import type { BatchState, Executor, StreamTensors } from '../runtime/executor';
import type { Communicator } from '../comm/communicator';
import { splitEven } from '../parallel/split';

export interface StageLinks {
  /** tensor-parallel group (null when tp = 1) */
  tp: Communicator | null;
  /** pipeline chain and this rank's neighbours in it, as ranks of that group */
  pp: Communicator | null;
  prev: number | null;
  next: number | null;
  /** sequence parallelism (ulysses / ring / usp): this rank's place in its sp group */
  sp?: { rank: number; size: number; impl: 'ulysses' | 'ring' | 'usp' | 'megatron' } | null;
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
export async function runStage(exec: Executor, mb: MicroBatches, S: number, tokens: Int32Array, links: StageLinks, vocab: number, times: StageTimes): Promise<Float32Array | null> {
  const hidden = exec.hidden;
  const B = mb.ranges[mb.ranges.length - 1][1];
  let logits: Float32Array | null = null;
  const boundary = links.tp
    ? async (seg: { partial: 'delta' | 'x' | null }, _i: number, stream: StreamTensors) => {
        const t = performance.now();
        if (seg.partial === 'delta' && stream.delta) await links.tp!.allReduce(stream.delta);
        else if (seg.partial === 'x') await links.tp!.allReduce(stream.x);
        const dt = performance.now() - t;
        times.commMs += dt;
        times.computeMs -= dt;
      }
    : undefined;

  for (let m = 0; m < mb.states.length; m++) {
    const [a, b] = mb.ranges[m];
    const Bm = b - a;
    let input: Parameters<Executor['step']>[2];
    if (links.prev === null) {
      input = { ids: BigInt64Array.from(tokens.subarray(a * S, b * S), (t) => BigInt(t)) };
    } else {
      const t = performance.now();
      const x = await links.pp!.recv(links.prev);
      times.bubbleMs += performance.now() - t;
      if (x.length !== Bm * S * hidden) throw new Error(`stage received ${x.length} floats, expected ${Bm}×${S}×${hidden}`);
      input = { stream: { x, delta: null } };
    }
    const t0 = performance.now();
    const out = await exec.step(mb.states[m], S, input, boundary);
    times.computeMs += performance.now() - t0;
    if ('stream' in out) {
      const t = performance.now();
      await links.pp!.send(links.next!, out.stream.x);
      times.commMs += performance.now() - t;
      continue;
    }
    let part = out.logits;
    if (links.tp) {
      const t = performance.now();
      part = await gatherVocab(links.tp, out.logits, Bm, vocab);
      times.commMs += performance.now() - t;
    }
    if (!logits) logits = new Float32Array(B * vocab);
    logits.set(part, a * vocab);
  }
  return logits;
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
