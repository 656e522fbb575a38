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
 *   Megatron-SP (tp=N,sp_impl=megatron, steps of ≥ N tokens) per layer 2
 *       all_gather + 2 reduce_scatter of the sequence shards (B_m·S_r·H each)
 *       instead of 2 all_reduce; the embedding is reduce-scattered; the last
 *       stage broadcasts the last token's (resid, delta) rows, 2·B_m·H, from
 *       tp rank N−1; decode steps are plain TP
 *   SP  per layer (see spLayerComm): Ulysses all-to-all of q,k,v forward and
 *       o back, ring passes of whole K/V caches, all-gathers in decode, and
 *       the last token's logits sent to sp rank 0 after a split prefill
 * Per-call bytes follow communicator.ts's closedForm.
 */
import { closedForm } from '../comm/communicator';
import { expertRange, tokenClass } from './expert';
import type { CommOp } from '../comm/communicator';
import type { OpTotals } from '../comm/ledger';
import type { ModelConfig } from '../model/types';
import type { RankRole } from './plan';
import type { RankPlace } from './mesh';
import { kvHeadRange, splitEven } from './split';
import { isSplit, megatronPlan, ownerOf, runTokens, seqRuns, SpHistory } from './sequence';
import type { ShardPlan } from '../runtime/shard';
import { shardLayout } from '../runtime/shard';

export type Expected = Partial<Record<CommOp, Pick<OpTotals, 'count' | 'bytesSent' | 'bytesRecv'>>>;

export function addExpected(into: Expected, op: CommOp, count: number, sent: number, recv: number): void {
  const e = (into[op] ??= { count: 0, bytesSent: 0, bytesRecv: 0 });
  e.count += count;
  e.bytesSent += sent;
  e.bytesRecv += recv;
}

/** Add one step's closed-form traffic of one rank into `into`. `sp`: the batch's SP history (sp > 1). */
export function stepComm(into: Expected, role: RankRole, place: RankPlace, config: ModelConfig, B: number, S: number, micro: number, sp?: SpHistory): void {
  const { tp, layers, embed, head } = role.plan;
  const m = Math.max(1, Math.min(micro, B));
  const spPlan = role.plan.sp && role.plan.sp.size > 1 && role.plan.sp.impl !== 'megatron' ? role.plan.sp : null;
  if (spPlan && !sp) throw new Error('stepComm: a sequence-parallel rank needs the batch SP history');
  // SP: a pipeline boundary carries only this rank's share of the tokens
  const Sl = spPlan ? runTokens(seqRuns(S, spPlan.size, spPlan.chunking)[spPlan.rank]) : S;
  if (spPlan) {
    for (let i = 0; i < m; i++) {
      const [a, b] = splitEven(B, m, i);
      spLayerComm(into, spPlan, config, b - a, S, sp!, layers[1] - layers[0], head, tp);
    }
  }
  // Megatron-SP splits a step of at least tp tokens into sequence shards (the ranks' own rule)
  const mg = role.plan.sp?.impl === 'megatron' && tp.size > 1 ? megatronPlan(S, tp.size, 0) : null;
  for (let i = 0; i < m; i++) {
    const [a, b] = splitEven(B, m, i);
    const H = config.hidden;
    if (mg?.mode === 'split') {
      const Bm = b - a;
      const counts = mg.shards.map(([s0, s1]) => Bm * (s1 - s0) * H);
      const sub = 2 * (layers[1] - layers[0]);
      const ag = closedForm.allGather(tp.size, tp.rank, counts);
      const rs = closedForm.reduceScatter(tp.size, tp.rank, counts);
      addExpected(into, 'all_gather', sub, sub * ag.sent, sub * ag.recv);
      addExpected(into, 'reduce_scatter', sub + (embed ? 1 : 0), (sub + (embed ? 1 : 0)) * rs.sent, (sub + (embed ? 1 : 0)) * rs.recv);
      if (head && layers[1] > layers[0]) {
        const bc = closedForm.broadcast(tp.size, tp.rank, tp.size - 1, 2 * Bm * H);
        addExpected(into, 'broadcast', 1, bc.sent, bc.recv);
      }
      if (head) {
        const vc = Array.from({ length: tp.size }, (_, r) => {
          const [v0, v1] = splitEven(config.vocabSize, tp.size, r);
          return Bm * (v1 - v0);
        });
        const g = closedForm.allGather(tp.size, tp.rank, vc);
        addExpected(into, 'all_gather', 1, g.sent, g.recv);
      }
      const Lx = counts[tp.rank];
      if (place.next !== null) addExpected(into, 'send', 1, 4 * Lx, 0);
      if (place.prev !== null) addExpected(into, 'recv', 1, 0, 4 * Lx);
      continue;
    }
    const L = (b - a) * Sl * H;
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
  const KV = local.kvHeads[1] - local.kvHeads[0];
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
 * The alternative for tp=N,ep=N (PARALAB_EP_TP=allreduce) — every rank runs its
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
