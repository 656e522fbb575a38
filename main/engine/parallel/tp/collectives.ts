/**
 * Tensor parallelism's collectives over the tp group (Megatron-LM, Shoeybi
 * et al. 2019):
 *   reducePartial  Megatron's g operator: a segment that ends with a
 *                  row-parallel projection (o_proj, down_proj: `delta`) or the
 *                  vocab-parallel embedding (`x`) holds a partial sum; it is
 *                  all-reduced in place, B·S·H floats, 2 per layer (+1)
 *   gatherVocab    the vocab-parallel LM head's (B, V_r) logits all-gathered
 *                  and interleaved per row into (B, V), so the sampler sees
 *                  the whole distribution
 * The bytes in closed form: tp/comm.ts.
 */
import type { Communicator } from '../../comm/communicator';
import type { StreamTensors } from '../../runtime/stream';
import { splitEven } from '../split';
import type { Range } from '../split';

/** All-reduce the partial output of a segment ending in a row-parallel projection or the vocab-parallel embedding; false when it has none. */
export async function reducePartial(tp: Communicator, partial: 'delta' | 'x' | null, stream: StreamTensors): Promise<boolean> {
  if (partial === 'delta' && stream.delta) await tp.allReduce(stream.delta);
  else if (partial === 'x') await tp.allReduce(stream.x);
  else return false;
  return true;
}

/** [rank r: (B, V_r)]… → (B, V): each row's vocab shards side by side. */
export function interleaveVocab(all: Float32Array, shards: Range[], B: number, vocab: number): Float32Array {
  const out = new Float32Array(B * vocab);
  let off = 0;
  for (const [s, e] of shards) {
    const w = e - s;
    for (let b = 0; b < B; b++) out.set(all.subarray(off + b * w, off + (b + 1) * w), b * vocab + s);
    off += B * w;
  }
  return out;
}

/** (B, V_r) on each TP rank → (B, V) on every rank. */
export async function gatherVocab(tp: Communicator, local: Float32Array, B: number, vocab: number): Promise<Float32Array> {
  const shards = Array.from({ length: tp.size }, (_, r) => splitEven(vocab, tp.size, r));
  const all = await tp.allGather(local, shards.map(([s, e]) => B * (e - s)));
  return interleaveVocab(all, shards, B, vocab);
}
