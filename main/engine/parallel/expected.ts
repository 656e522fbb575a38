/**
 * The bytes each plan should move, in closed form, per rank and step — the
 * numbers the comm ledger's measurements are set beside.
 *
 * For one step of S new tokens over B sequences, split into micro-batches
 * of B_m (L_m = B_m·S·H floats):
 *   TP  all_reduce: 2 per layer of the stage (+1 for the vocab-parallel
 *       embedding on the first stage), each of L_m floats
 *       all_gather: the vocab-parallel logits on the last stage, B_m·V_r per rank
 *   PP  send L_m floats to the next stage, recv L_m from the previous one
 *   DP  nothing between ranks
 * Per-call bytes follow communicator.ts's closedForm.
 */
import { closedForm } from '../comm/communicator';
import type { CommOp } from '../comm/communicator';
import type { OpTotals } from '../comm/ledger';
import type { ModelConfig } from '../model/types';
import type { RankRole } from './plan';
import type { RankPlace } from './mesh';
import { splitEven } from './split';

export type Expected = Partial<Record<CommOp, Pick<OpTotals, 'count' | 'bytesSent' | 'bytesRecv'>>>;

export function addExpected(into: Expected, op: CommOp, count: number, sent: number, recv: number): void {
  const e = (into[op] ??= { count: 0, bytesSent: 0, bytesRecv: 0 });
  e.count += count;
  e.bytesSent += sent;
  e.bytesRecv += recv;
}

/** Add one step's closed-form traffic of one rank into `into`. */
export function stepComm(into: Expected, role: RankRole, place: RankPlace, config: ModelConfig, B: number, S: number, micro: number): void {
  const { tp, layers, embed, head } = role.plan;
  const m = Math.max(1, Math.min(micro, B));
  for (let i = 0; i < m; i++) {
    const [a, b] = splitEven(B, m, i);
    const L = (b - a) * S * config.hidden;
    if (tp.size > 1) {
      const calls = 2 * (layers[1] - layers[0]) + (embed ? 1 : 0);
      const ar = closedForm.allReduce(tp.size, tp.rank, L);
      addExpected(into, 'all_reduce', calls, calls * ar.sent, calls * ar.recv);
      if (head) {
        const counts = Array.from({ length: tp.size }, (_, r) => {
          const [v0, v1] = splitEven(config.vocabSize, tp.size, r);
          return (b - a) * (v1 - v0);
        });
        const ag = closedForm.allGather(tp.size, tp.rank, counts);
        addExpected(into, 'all_gather', 1, ag.sent, ag.recv);
      }
    }
    if (place.next !== null) addExpected(into, 'send', 1, 4 * L, 0);
    if (place.prev !== null) addExpected(into, 'recv', 1, 0, 4 * L);
  }
}
