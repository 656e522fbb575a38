/**
 * Tensor parallelism's closed form, per rank and micro-batch of Bm
 * sequences × S tokens on this rank (L = Bm·S·H floats), n = tp:
 *   all_reduce  2 per layer of the stage (after o_proj and down_proj: the g
 *               operator), +1 on the first stage for the vocab-parallel
 *               embedding; each closedForm.allReduce(n, L): 4·2(n−1)/n·L bytes
 *               when n divides L
 *   all_gather  1 on the last stage: the vocab-parallel logits, Bm·V_r floats
 *               per rank (V_r: this rank's vocab shard, splitEven)
 * Megatron-SP replaces the all-reduces by all-gather + reduce-scatter pairs
 * (sp/megatron/comm.ts).
 */
import { closedForm } from '../../comm/communicator';
import { addExpected } from '../../comm/ledger';
import type { Expected } from '../../comm/ledger';
import type { ModelConfig } from '../../model/types';
import type { ShardPlan } from '../plan';
import { splitEven } from '../split';

/** Floats of each tp rank's vocab shard for Bm sequences' last-position logits. */
export function vocabCounts(vocab: number, tp: number, Bm: number): number[] {
  return Array.from({ length: tp }, (_, r) => {
    const [v0, v1] = splitEven(vocab, tp, r);
    return Bm * (v1 - v0);
  });
}

/** The all-gather of the vocab-parallel logits on the last stage. */
export function vocabGatherComm(into: Expected, tp: ShardPlan['tp'], config: ModelConfig, Bm: number): void {
  const g = closedForm.allGather(tp.size, tp.rank, vocabCounts(config.vocabSize, tp.size, Bm));
  addExpected(into, 'all_gather', 1, g.sent, g.recv);
}

/** One micro-batch of plain TP: Bm sequences of S tokens each on this rank. */
export function tpStepComm(into: Expected, plan: ShardPlan, config: ModelConfig, Bm: number, S: number): void {
  const { tp, layers, embed, head } = plan;
  if (tp.size <= 1) return;
  const calls = 2 * (layers[1] - layers[0]) + (embed ? 1 : 0);
  const ar = closedForm.allReduce(tp.size, tp.rank, Bm * S * config.hidden);
  addExpected(into, 'all_reduce', calls, calls * ar.sent, calls * ar.recv);
  if (head) vocabGatherComm(into, tp, config, Bm);
}
