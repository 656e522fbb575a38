/**
 * Megatron-SP's collectives over the tp group, with their pure layouts.
 * Korthikanti et al. 2022 replace TP's all-reduce (Megatron's g) by its two
 * halves around each sublayer body:
 *
 *   gatherSequence    all-gather of the normed sequence shards → the whole
 *                     sequence, (B, S, H): sent (N−1)·B·S_me·H floats
 *   scatterSequence   reduce-scatter of the body's partial (B, S, H) → this
 *                     rank's summed shard (B, S_me, H): sent B·(S − S_me)·H
 *   broadcastLastRow  the last token's (resid, delta) rows, 2·B·H floats, from
 *                     the rank holding them (tp rank N−1) to every rank, so
 *                     every vocab shard of the LM head sees it
 *
 * Collectives cut buffers in rank order, so a (B, S, H) batch is reordered
 * to shard-major [rank r: (B, S_r, H)]… first (a no-op for B = 1).
 */
import type { Communicator } from '../../../comm/communicator';
import type { Range } from '../../split';

/** (B, S, H) → [rank r: (B, S_r, H)]…, the layout reduce-scatter cuts in rank order. */
export function toShardMajor(x: Float32Array, shards: Range[], B: number, H: number): Float32Array {
  if (B === 1) return x;
  const S = shards[shards.length - 1][1];
  const out = new Float32Array(B * S * H);
  let off = 0;
  for (const [a, b] of shards) {
    const w = (b - a) * H;
    for (let bb = 0; bb < B; bb++) out.set(x.subarray((bb * S + a) * H, (bb * S + b) * H), off + bb * w);
    off += B * w;
  }
  return out;
}

/** allGather result [rank r: (B, S_r, H)]… → (B, S, H). */
export function fromShardMajor(all: Float32Array, shards: Range[], B: number, H: number): Float32Array {
  if (B === 1) return all;
  const S = shards[shards.length - 1][1];
  const out = new Float32Array(B * S * H);
  let off = 0;
  for (const [a, b] of shards) {
    const w = (b - a) * H;
    for (let bb = 0; bb < B; bb++) out.set(all.subarray(off + bb * w, off + (bb + 1) * w), (bb * S + a) * H);
    off += B * w;
  }
  return out;
}

const shardCounts = (shards: Range[], B: number, H: number) => shards.map(([a, b]) => B * (b - a) * H);

/** Every rank's (B, S_r, H) shard → the whole (B, S, H) sequence on every rank. */
export async function gatherSequence(tp: Communicator, shard: Float32Array, shards: Range[], B: number, H: number): Promise<Float32Array> {
  return fromShardMajor(await tp.allGather(shard, shardCounts(shards, B, H)), shards, B, H);
}

/** Partial sums (B, S, H) on every rank → this rank's summed shard (B, S_me, H). */
export function scatterSequence(tp: Communicator, partial: Float32Array, shards: Range[], B: number, H: number): Promise<Float32Array> {
  return tp.reduceScatter(toShardMajor(partial, shards, B, H), shardCounts(shards, B, H));
}

/**
 * The last token's rows of (resid, delta) — each (B, S_me, H) on the rank
 * holding the last shard — to every tp rank, as (B, H) each.
 */
export async function broadcastLastRow(tp: Communicator, resid: Float32Array, delta: Float32Array, B: number, Sl: number, H: number): Promise<{ x: Float32Array; delta: Float32Array }> {
  const root = tp.size - 1;
  const row = new Float32Array(2 * B * H);
  if (tp.rank === root) {
    for (let b = 0; b < B; b++) {
      row.set(resid.subarray((b * Sl + Sl - 1) * H, (b * Sl + Sl) * H), b * H);
      row.set(delta.subarray((b * Sl + Sl - 1) * H, (b * Sl + Sl) * H), (B + b) * H);
    }
  }
  await tp.broadcast(row, root);
  return { x: row.slice(0, B * H), delta: row.slice(B * H) };
}
