/**
 * The bytes each plan should move, in closed form, per rank and step — the
 * numbers the comm ledger's measurements are set beside. Each strategy states
 * its own beside its code; this file adds them up for one rank and step of S
 * new tokens over B sequences, split into the pipeline's micro-batches:
 *   TP           tp/comm.ts            all-reduces after each sublayer, logits all-gather
 *   PP           pp/comm.ts            send / recv of the stage's output stream
 *   SP           sp/comm.ts            Ulysses all-to-alls, ring passes, decode all-gathers
 *   Megatron-SP  sp/megatron/comm.ts   all-gather / reduce-scatter pairs (steps of ≥ tp tokens)
 *   EP           ep/comm.ts            dispatch / combine all-to-alls from routed counts
 *                                      (the host adds them once the ranks report their routing)
 *   DP           nothing between ranks
 */
import type { Expected } from '../comm/ledger';
import type { ModelConfig } from '../model/types';
import type { RankRole } from './plan';
import type { RankPlace } from './mesh';
import { splitEven } from './split';
import { runTokens, seqRuns } from './sp/layout';
import type { SpHistory } from './sp/layout';
import { spLayerComm } from './sp/comm';
import { megatronPlan } from './sp/megatron/plan';
import { megatronStepComm } from './sp/megatron/comm';
import { tpStepComm } from './tp/comm';
import { ppStepComm } from './pp/comm';

/** Add one step's closed-form traffic of one rank into `into`. `sp`: the batch's SP history (sp > 1). */
export function stepComm(into: Expected, role: RankRole, place: RankPlace, config: ModelConfig, B: number, S: number, micro: number, sp?: SpHistory): void {
  const { tp, layers, head } = role.plan;
  const m = Math.max(1, Math.min(micro, B));
  const spPlan = role.plan.sp && role.plan.sp.size > 1 && role.plan.sp.impl !== 'megatron' ? role.plan.sp : null;
  if (spPlan && !sp) throw new Error('stepComm: a sequence-parallel rank needs the batch SP history');
  // SP: a pipeline boundary carries only this rank's share of the tokens
  const Sl = spPlan ? runTokens(seqRuns(S, spPlan.size, spPlan.chunking)[spPlan.rank]) : S;
  // Megatron-SP splits a step of at least tp tokens into sequence shards (the ranks' own rule)
  const mg = role.plan.sp?.impl === 'megatron' && tp.size > 1 ? megatronPlan(S, tp.size, 0) : null;
  for (let i = 0; i < m; i++) {
    const [a, b] = splitEven(B, m, i);
    const Bm = b - a;
    if (spPlan) spLayerComm(into, spPlan, config, Bm, S, sp!, layers[1] - layers[0], head, tp);
    if (mg?.mode === 'split') {
      ppStepComm(into, place, megatronStepComm(into, role.plan, config, Bm, mg));
      continue;
    }
    tpStepComm(into, role.plan, config, Bm, Sl);
    ppStepComm(into, place, Bm * Sl * config.hidden);
  }
}
