/**
 * Megatron sequence parallelism's step rule (tp=N,sp_impl=megatron): a step
 * of at least N tokens is cut into N contiguous sequence shards, one per tp
 * rank (splitEven, the first shards one token longer); a shorter step
 * (decode) cannot be split and runs as plain TP. Every tp rank evaluates it
 * for itself; the host evaluates it for the closed form (megatron/comm.ts).
 */
import { splitEven } from '../../split';
import type { Range } from '../../split';

/** What Megatron-SP does with one step: each tp rank's contiguous shard of the tokens, or (fewer tokens than ranks: decode) plain TP. */
export interface MegatronStepPlan {
  mode: 'split' | 'replicated';
  /** tokens per sequence in the cache before this step */
  past: number;
  /** tokens per sequence in the step */
  S: number;
  /** each tp rank's shard of the step's tokens ([0, S) for all when replicated) */
  shards: Range[];
}

export function megatronPlan(S: number, tp: number, past: number): MegatronStepPlan {
  const split = S >= tp;
  return { mode: split ? 'split' : 'replicated', past, S, shards: Array.from({ length: tp }, (_, r) => (split ? splitEven(S, tp, r) : [0, S])) };
}
