/**
 * Expert parallelism's closed form, from the routed counts the ranks report
 * (bytes are linear in rows, so the counts of a whole step suffice).
 */
import { closedForm } from '../../comm/communicator';
import { addExpected } from '../../comm/ledger';
import type { Expected } from '../../comm/ledger';
import type { ModelConfig } from '../../model/types';
import type { RankRole } from '../plan';
import { splitEven } from '../split';
import { expertRange, tokenClass } from './plan';

/**
 * Expert parallelism, one step of one rank (every layer of the stage is a MoE
 * layer; each runs once per micro-batch). Per MoE block call, with n = ep,
 * E_p the experts of ep rank p, r_q[e] the rows ep rank q routed to expert e
 * in this step (reported by the ranks after routing, summed over layers and
 * micro-batches — bytes are linear in rows), H hidden:
 *   all_to_all ×2   dispatch: header of row counts per expert, sent 4·(E − E_me), recv 4·(n−1)·E_me,
 *                             and the rows, sent 4H·Σ_{e∉me} r_me[e], recv 4H·Σ_{q≠me} Σ_{e∈me} r_q[e]
 *                   combine:  the same rows back (sent and recv swapped)
 *   all_gather ×1   with a token class of c > 1 ranks (tp ranks in the ep group):
 *                   the shares splitEven(real rows, c)·H of the combined output
 *   TP              such a class does no MLP all-reduce: stepComm's second all-reduce
 *                   per layer (B_m·S·H floats) is taken back out
 * Without EP, tensor-parallel experts all-reduce like a dense MLP (stepComm as is).
 * The alternative for tp=N,ep=N (spec key ep_tp=allreduce) — every rank runs its
 * experts on the rows routed to them among all tokens, then an all-reduce over
 * the ep (= tp) group — moves stepComm's MLP all-reduce, 4·2(n−1)/n·B·S·H per
 * layer, and nothing else.
 */
export function moeStepComm(
  into: Expected,
  role: RankRole,
  config: ModelConfig,
  /** per micro-batch: sequences (ghosts included) and real sequences */
  micro: { seqs: number; real: number }[],
  S: number,
  /** rows routed per expert in this step, per ep rank of this rank's ep group */
  routed: number[][],
): void {
  const ep = role.plan.ep;
  const moe = config.moe;
  if (!moe || !ep || ep.size <= 1) return;
  // all-reduce mode (ep group = tp group): the MoE all-reduce is stepComm's MLP all-reduce, nothing else moves
  if (ep.tpTokens === 'allreduce') return;
  const H = config.hidden;
  const E = moe.experts;
  const n = ep.size;
  const me = ep.rank;
  const [m0, m1] = expertRange(E, n, me);
  const mine = (e: number) => e >= m0 && e < m1;
  const layers = role.plan.layers[1] - role.plan.layers[0];
  const calls = layers * micro.length;
  let rowsOut = 0;
  let rowsIn = 0;
  routed[me].forEach((r, e) => (rowsOut += mine(e) ? 0 : r));
  routed.forEach((rq, q) => {
    if (q !== me) rq.forEach((r, e) => (rowsIn += mine(e) ? r : 0));
  });
  const meta = { sent: 4 * (E - (m1 - m0)), recv: 4 * (n - 1) * (m1 - m0) };
  addExpected(into, 'all_to_all', 2 * calls, calls * meta.sent + 4 * H * (rowsOut + rowsIn), calls * meta.recv + 4 * H * (rowsIn + rowsOut));
  const cls = tokenClass(role.plan);
  if (!cls) return;
  for (const mb of micro) {
    const counts = Array.from({ length: cls.size }, (_, i) => {
      const [a, b] = splitEven(mb.real * S, cls.size, i);
      return (b - a) * H;
    });
    const g = closedForm.allGather(cls.size, cls.index, counts);
    addExpected(into, 'all_gather', layers, layers * g.sent, layers * g.recv);
    const tp = role.plan.tp;
    const ar = closedForm.allReduce(tp.size, tp.rank, mb.seqs * S * H);
    addExpected(into, 'all_reduce', -layers, -layers * ar.sent, -layers * ar.recv);
  }
}
