/**
 * Sequence parallelism's closed form (Ulysses, ring, USP): the bytes one rank
 * moves in one step, from the same layout rule the ranks use (sp/layout.ts)
 * and the same head split (tp/shard.ts for this rank's tp heads, splitEven
 * over the Ulysses group). Per-call bytes follow communicator.ts's closedForm.
 */
import { closedForm } from '../../comm/communicator';
import { addExpected } from '../../comm/ledger';
import type { Expected } from '../../comm/ledger';
import type { ModelConfig } from '../../model/types';
import type { ShardPlan } from '../plan';
import { kvHeadRange, splitEven } from '../split';
import { shardLayout } from '../tp/layout';
import { isSplit, ownerOf, runTokens, seqRuns, SpHistory } from './layout';

/**
 * One micro-batch (Bm sequences) of one SP step on one rank, over `layers`
 * attention layers. Floats per token and head: D (q, k, v or o). With my
 * Ulysses index u of U, ring index r of R, nq(u)/nkv(u) the heads of member u:
 *   split step
 *     all_to_all ×2 per layer  forward: Σ_{u'≠u} Sl·Bm·(nq(u')+2·nkv(u'))·D   back: Σ_{u'≠u} t(u')·Bm·nq(u)·D
 *     send/recv ×(R−1) per layer: the cache of ring member (r−t) after this step,
 *       (2 + 2·runs + rows + 2·rows·Bm·nkv·D) floats
 *     send Bm·V logits from the holder of the last token to sp rank 0 (last stage)
 *   replicated step (decode)
 *     all_gather over the ring of [o | lse]: S·Bm·nq·(D+1) per rank;  over Ulysses of o: S·Bm·nq·D
 */
export function spLayerComm(into: Expected, sp: NonNullable<ShardPlan['sp']>, c: ModelConfig, Bm: number, S: number, hist: SpHistory, layers: number, head: boolean, tp: ShardPlan['tp'] = { rank: 0, size: 1 }): void {
  const U = sp.ulysses;
  const R = sp.size / U;
  const u = sp.rank % U;
  const r = Math.floor(sp.rank / U);
  const D = c.headDim;
  // the heads of this rank's tp shard (all of them when tp = 1), split over the Ulysses group
  const local = shardLayout(c, tp);
  const N = local.heads[1] - local.heads[0];
  const KV = local.kvSlots.length;
  const heads = (uu: number) => {
    const q = splitEven(N, U, uu);
    const kv = kvHeadRange(N, KV, q[0], q[1]);
    return { nq: q[1] - q[0], nkv: kv[1] - kv[0] };
  };
  const mine = heads(u);
  const split = isSplit(S, sp.size, sp.chunking);
  // Every attention layer of the stage moves the same bytes in a step: one layer's traffic × layers.
  if (split) {
    const runs = seqRuns(S, sp.size, sp.chunking);
    const Sl = runTokens(runs[sp.rank]);
    if (U > 1) {
      const members = Array.from({ length: U }, (_, uu) => r * U + uu);
      const t = members.map((s) => runTokens(runs[s]));
      const fwdSend = members.map((_, uu) => Sl * Bm * (heads(uu).nq + 2 * heads(uu).nkv) * D);
      const fwdRecv = t.map((tt) => tt * Bm * (mine.nq + 2 * mine.nkv) * D);
      const a = closedForm.allToAllV(u, fwdSend, fwdRecv);
      const backSend = t.map((tt) => tt * Bm * mine.nq * D);
      const backRecv = members.map((_, uu) => Sl * Bm * heads(uu).nq * D);
      const b = closedForm.allToAllV(u, backSend, backRecv);
      addExpected(into, 'all_to_all', 2 * layers, layers * (a.sent + b.sent), layers * (a.recv + b.recv));
    }
    // the caches as they are after this step
    const after = new SpHistory(sp.size, U, sp.chunking);
    after.rows.splice(0, R, ...hist.rows);
    after.runs.splice(0, R, ...hist.runs);
    after.advance(S);
    const sentOf = (member: number) => 4 * (2 + 2 * after.runs[member] + after.rows[member] + 2 * after.rows[member] * Bm * mine.nkv * D);
    for (let t = 0; t < R - 1; t++) {
      addExpected(into, 'send', layers, layers * sentOf((r - t + R) % R), 0);
      addExpected(into, 'recv', layers, 0, layers * sentOf((r - t - 1 + 2 * R) % R));
    }
  } else {
    if (R > 1) {
      const chunk = S * Bm * mine.nq * (D + 1);
      const g = closedForm.allGather(R, r, new Array<number>(R).fill(chunk));
      addExpected(into, 'all_gather', layers, layers * g.sent, layers * g.recv);
    }
    if (U > 1) {
      const g = closedForm.allGather(U, u, Array.from({ length: U }, (_, uu) => S * Bm * heads(uu).nq * D));
      addExpected(into, 'all_gather', layers, layers * g.sent, layers * g.recv);
    }
  }
  if (split && head) {
    const holder = ownerOf(seqRuns(S, sp.size, sp.chunking), S - 1);
    if (holder !== 0 && sp.rank === holder) addExpected(into, 'send', 1, 4 * Bm * c.vocabSize, 0);
    if (holder !== 0 && sp.rank === 0) addExpected(into, 'recv', 1, 0, 4 * Bm * c.vocabSize);
  }
}
