/**
 * What one rank keeps for one batch of sequences between steps: the KV cache
 * of the attention layers its segments run, each block's own per-batch state,
 * how many tokens the cache holds, and which rows are real.
 *
 *   kv[l]   k, v (B, kv_local, P, D) of attention layer l (a segment's cache)
 *   blocks  per block name: a block's own cache (a sequence shard of K/V, …)
 */
import { ort } from './ort';

/** What a block may keep between steps of one batch; kvBytes() counts its cache. */
export interface BlockState {
  kvBytes(): number;
}

export interface LayerKv {
  k: ort.Tensor;
  v: ort.Tensor;
}

export class BatchState {
  readonly kv = new Map<number, LayerKv>();
  /** per block name: the block's own cache (e.g. a sequence shard of K/V) */
  readonly blocks = new Map<string, BlockState>();
  /** tokens already in the cache (of the whole sequence, also when this rank holds only a shard of it) */
  length = 0;
  /**
   * Continuous batching: tokens per row when the rows differ (a ragged batch,
   * rank/serving-pool.ts; `length` is then the cache width, max lens); null
   * when every row has `length`.
   */
  lens: number[] | null = null;
  /**
   * Rows [0, real) are real sequences; the rest pad the batch (expert
   * parallelism's lockstep ghosts, parallel/ep/lockstep.ts): they are never
   * routed to experts.
   */
  real: number;
  constructor(readonly batch: number) {
    this.real = batch;
  }

  kvBytes(): number {
    let n = 0;
    for (const { k, v } of this.kv.values()) n += (k.data as Float32Array).byteLength + (v.data as Float32Array).byteLength;
    for (const b of this.blocks.values()) n += b.kvBytes();
    return n;
  }
}
