/**
 * Which heads / KV heads / FFN columns / vocab rows a tensor-parallel rank
 * owns (Megatron-LM's split, nano-vllm's Column/RowParallelLinear): heads
 * and FFN columns split contiguously over the tp ranks (splitEven), the KV
 * heads a rank's query heads read (replicated on several ranks when the KV
 * heads are fewer than the ranks, or do not divide evenly), vocab rows split
 * for the vocab-parallel embedding and LM head. Pure: every rank evaluates it
 * for itself, the host evaluates it for the closed forms.
 */
import type { ModelConfig } from '../../model/types';
import { kvHeadRange, splitEven } from '../split';
import type { Range } from '../split';

export interface ShardLayout {
  heads: Range;
  kvHeads: Range;
  ffn: Range;
  vocab: Range;
}

/** Which heads / FFN columns / vocab rows a TP rank owns. */
export function shardLayout(c: ModelConfig, tp: { rank: number; size: number }): ShardLayout {
  if (c.heads % tp.size !== 0) {
    throw new Error(`tp=${tp.size} does not divide ${c.heads} attention heads`);
  }
  const heads = splitEven(c.heads, tp.size, tp.rank);
  const kvHeads = kvHeadRange(c.heads, c.kvHeads, heads[0], heads[1]);
  const nq = heads[1] - heads[0];
  const nkv = kvHeads[1] - kvHeads[0];
  if (nq % nkv !== 0 || (c.heads / c.kvHeads) % (nq / nkv) !== 0) {
    throw new Error(`tp=${tp.size} splits ${c.heads} query heads over ${c.kvHeads} kv heads unevenly; use a tp that divides or is a multiple of ${c.kvHeads}`);
  }
  return { heads, kvHeads, ffn: splitEven(c.ffn, tp.size, tp.rank), vocab: splitEven(c.vocabSize, tp.size, tp.rank) };
}
