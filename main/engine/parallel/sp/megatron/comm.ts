/**
 * Megatron-SP's closed form (tp=N,sp_impl=megatron), for a step of S ≥ N
 * tokens split into shards S_r (megatronPlan), per micro-batch of Bm
 * sequences, counts c_r = Bm·S_r·H:
 *   all_gather      2 per layer (before each sublayer body): allGather(c)
 *   reduce_scatter  2 per layer (after each body) + 1 for the embedding on
 *                   the first stage: reduceScatter(c)
 *   broadcast       1 on the last stage: the last token's (resid, delta) rows,
 *                   2·Bm·H floats, from tp rank N−1
 *   all_gather      1 on the last stage: the vocab-parallel logits (tp/comm.ts)
 * Decode steps (S < N) are plain TP (tp/comm.ts).
 */
import { closedForm } from '../../../comm/communicator';
import { addExpected } from '../../../comm/ledger';
import type { Expected } from '../../../comm/ledger';
import type { ModelConfig } from '../../../model/types';
import type { ShardPlan } from '../../plan';
import { vocabGatherComm } from '../../tp/comm';
import type { MegatronStepPlan } from './plan';

/** One micro-batch of a split Megatron-SP step; returns this rank's shard floats (what crosses a pipeline boundary). */
export function megatronStepComm(into: Expected, plan: ShardPlan, config: ModelConfig, Bm: number, mg: MegatronStepPlan): number {
  const { tp, layers, embed, head } = plan;
  const H = config.hidden;
  const counts = mg.shards.map(([s0, s1]) => Bm * (s1 - s0) * H);
  const sub = 2 * (layers[1] - layers[0]);
  const ag = closedForm.allGather(tp.size, tp.rank, counts);
  const rs = closedForm.reduceScatter(tp.size, tp.rank, counts);
  const scatters = sub + (embed ? 1 : 0);
  addExpected(into, 'all_gather', sub, sub * ag.sent, sub * ag.recv);
  addExpected(into, 'reduce_scatter', scatters, scatters * rs.sent, scatters * rs.recv);
  if (head && layers[1] > layers[0]) {
    const bc = closedForm.broadcast(tp.size, tp.rank, tp.size - 1, 2 * Bm * H);
    addExpected(into, 'broadcast', 1, bc.sent, bc.recv);
  }
  if (head) vocabGatherComm(into, tp, config, Bm);
  return counts[tp.rank];
}
