/**
 * The Mixture-of-Experts sublayer as an executor block (one per MoE layer),
 * with expert parallelism's dispatch and combine around the experts:
 *
 *   1. resid = x + delta for every row; this rank's share of the real rows
 *      (its token class splits them, ep/plan.ts tokenClass) goes through the
 *      router graph → normed rows, top-k ids and weights, and the gated
 *      shared expert.
 *   2. EP: all_to_all #1 dispatches each routed (row, slot) to the rank that
 *      owns its expert (ep/dispatch.ts: layout and bytes).
 *   3. Each local expert runs once on all rows routed to it (one session run).
 *   4. EP: all_to_all #2 combines the expert outputs back on the home rank.
 *   5. On the home rank: out[row] = Σ_slot w_slot·y_slot (+ shared); then the
 *      class all-gathers its shares (tp ranks in the ep group), or, for
 *      tensor-parallel experts without EP, the partial sums are all-reduced
 *      over tp. Returns (resid, out): the residual scheme of graph/layers.ts
 *      (the next sublayer adds `out` into its addNorm).
 *
 * ep_tp=allreduce (tp = ep): no dispatch; every rank routes all tokens, runs
 * its experts on the rows routed to them, and the partial outputs are
 * all-reduced over the ep (= tp) group.
 *
 * Ghost rows (ep/lockstep.ts) are never routed. The rows this rank routed
 * per expert go into the step's stats (BlockStep.stats), which the rank
 * returns in its step result. Every session run and collective is a span in
 * the step's timings ('comm' spans count as communication time).
 */
import type { Piece } from '../../graph/segments';
import { createSession, ort } from '../../runtime/ort';
import { recordSpan } from '../../runtime/stream';
import type { StreamTensors } from '../../runtime/stream';
import type { BatchState } from '../../runtime/batch';
import type { Block, BlockEnv, BlockFactory, BlockStep } from '../../runtime/block';
import type { Communicator } from '../../comm/communicator';
import { splitEven } from '../split';
import { buildExpertGraph, buildRouterGraph } from '../../graph/moe';
import type { MoeShape, MoeWeights } from '../../graph/moe';
import { expertRange, tokenClass } from './plan';
import { combine, dispatch, rowsPerOwner, sortByExpert, weightedSum } from './dispatch';
import type { Owners, Received, Routed } from './dispatch';

type Session = ort.InferenceSession;

/** The router's outputs for this rank's share of the rows. */
interface Routing {
  normed: Float32Array;
  weights: Float32Array;
  ids: BigInt64Array;
  shared: Float32Array | null;
}

export class MoeBlock implements Block {
  readonly kind = 'block' as const;
  readonly layers: number[] = [];
  readonly name: string;
  /** which experts each ep rank of the dispatch group owns */
  private readonly owners: Owners;

  private constructor(
    readonly layer: number,
    private readonly s: MoeShape,
    private readonly router: Session,
    private readonly experts: Session[],
    readonly weightBytes: number,
    /** dispatch / combine group (null: no rows move; the local experts run on the rows routed to them here) */
    private readonly ep: Communicator | null,
    /** token class: who shares this rank's tokens and through which group their shares are gathered */
    private readonly cls: { comm: Communicator; size: number; index: number } | null,
    /** all-reduce of partial outputs: tp for tensor-parallel experts (ep=1), ep in the all-reduce EP mode */
    private readonly reduce: Communicator | null,
    /** whether this rank's routed counts are its own (false: a peer reports the same routing) */
    private readonly reports: boolean,
    /** whether this rank adds the shared expert (false where an all-reduce would add it twice) */
    private readonly sharedHere: boolean,
    /** experts held here */
    private readonly local: [number, number],
  ) {
    this.name = `moe${layer}`;
    const n = ep?.size ?? 1;
    const ranges = Array.from({ length: n }, (_, p) => expertRange(s.experts, n, p));
    this.owners = { starts: ranges.map(([a]) => a), sizes: ranges.map(([a, b]) => b - a) };
  }

  static async create(piece: Extract<Piece, { kind: 'moe' }>, env: BlockEnv): Promise<MoeBlock> {
    const { w, s } = piece;
    const plan = env.plan;
    const epOn = !!plan.ep && plan.ep.size > 1;
    const ep = epOn ? env.group('ep') : null;
    if (epOn && !ep) throw new Error(`rank ${env.rank}: ep=${plan.ep!.size} but no 'ep' group in its links`);
    // ep_tp=allreduce: no dispatch, every rank runs its experts on the rows
    // routed to them among all tokens, and the partial outputs are all-reduced over ep.
    const allreduce = epOn && plan.ep!.tpTokens === 'allreduce' && plan.tp.size === plan.ep!.size;
    const tc = allreduce ? null : tokenClass(plan);
    let cls: MoeBlock['cls'] = null;
    if (tc) {
      const comm = tc.via === 'ep' ? ep : env.group('tp');
      if (!comm) throw new Error(`rank ${env.rank}: no '${tc.via}' group to gather the token shares of its ep group over`);
      cls = { comm, size: tc.size, index: tc.index };
    }
    const reduce = allreduce ? ep : !epOn && plan.tp.size > 1 ? env.group('tp') : null;
    const local = epOn ? expertRange(s.experts, plan.ep!.size, plan.ep!.rank) : ([0, s.experts] as [number, number]);
    checkWeights(piece.layer, w, s, local);
    const r = buildRouterGraph(`moe${piece.layer}.router`, w, s);
    const router = await createSession(r.bytes, env.session);
    let bytes = r.weightBytes;
    const experts: Session[] = [];
    for (const e of w.experts) {
      const g = buildExpertGraph(`moe${piece.layer}.e${e.id}`, e, s);
      experts.push(await createSession(g.bytes, env.session));
      bytes += g.weightBytes;
    }
    const first = !reduce || reduce.rank === 0;
    return new MoeBlock(piece.layer, s, router, experts, bytes, allreduce ? null : ep, cls, reduce, first, !allreduce || first, local);
  }

  async run(state: BatchState, stream: StreamTensors, step: BlockStep): Promise<StreamTensors> {
    const H = this.s.hidden;
    const K = this.s.topK;
    const T = state.batch * step.S;
    const resid = new Float32Array(T * H);
    if (stream.delta) for (let i = 0; i < resid.length; i++) resid[i] = stream.x[i] + stream.delta[i];
    else resid.set(stream.x.subarray(0, T * H));
    const real = state.real * step.S;
    const [r0, r1] = this.cls ? splitEven(real, this.cls.size, this.cls.index) : [0, real];
    const N = r1 - r0;
    const span = (what: string, start: number, cat: 'compute' | 'comm') => recordSpan(step.timings, `${this.name} ${what}`, start, cat);

    // 1. route this rank's share
    const routing = await this.route(resid.subarray(r0 * H, r1 * H), N, span);
    const sorted = sortByExpert(routing.normed, routing.ids, N, K, this.s.experts, H);
    if (this.reports && N > 0 && step.stats) {
      const acc = (step.stats.routed[this.layer] ??= new Array<number>(this.s.experts).fill(0));
      for (let e = 0; e < this.s.experts; e++) acc[e] += sorted.cnt[e];
    }
    // 2. EP dispatch (without EP the rows stay here, in the send layout)
    const rowsTo = rowsPerOwner(sorted, this.owners);
    let received: Received | null = null;
    if (this.ep) {
      const t = performance.now();
      received = await dispatch(this.ep, sorted, this.owners, H);
      span('dispatch all_to_all', t, 'comm');
    }
    // 3. each local expert once over all its rows
    const results = await this.runExperts(sorted, received, span);
    // 4. EP combine
    let back = results;
    if (this.ep) {
      const t = performance.now();
      back = await combine(this.ep, results, received!.rowsFrom, rowsTo, H);
      span('combine all_to_all', t, 'comm');
    }
    // 5. weighted sum in slot order, then the shared expert; then the class gather or the tp reduce
    const out = new Float32Array(T * H);
    weightedSum(out, back, routing.weights, sorted.entry, this.sharedHere ? routing.shared : null, r0, N, K, H);
    await this.finish(out, real, r0, r1, span);
    return { x: resid, delta: out };
  }

  /** The router graph on `rows` (N, H); empty outputs when this rank has no rows. */
  private async route(rows: Float32Array, N: number, span: (what: string, start: number, cat: 'compute' | 'comm') => void): Promise<Routing> {
    if (N === 0) return { normed: new Float32Array(0), weights: new Float32Array(0), ids: new BigInt64Array(0), shared: null };
    const t = performance.now();
    const o = await this.router.run({ h: new ort.Tensor('float32', rows, [N, this.s.hidden]) });
    span('router', t, 'compute');
    return { normed: o.normed.data as Float32Array, weights: o.weights.data as Float32Array, ids: o.ids.data as BigInt64Array, shared: o.shared ? (o.shared.data as Float32Array) : null };
  }

  /**
   * Run each local expert once on every row routed to it, from every source
   * (in source order); outputs in the layout the rows arrived in (received,
   * or without EP the send layout).
   */
  private async runExperts(sorted: Routed, received: Received | null, span: (what: string, start: number, cat: 'compute' | 'comm') => void): Promise<Float32Array> {
    const H = this.s.hidden;
    const El = this.local[1] - this.local[0];
    const rows = received ? received.rows : sorted.send;
    const n = received ? received.rowsFrom.length : 1;
    const result = new Float32Array(rows.length);
    const srcStart: number[] = [0];
    for (let q = 0; q < n; q++) srcStart.push(srcStart[q] + (received ? received.rowsFrom[q] : 0));
    const count = (q: number, e: number) => (received ? received.meta[q * El + e] : sorted.cnt[this.local[0] + e]);
    // position of (source q, local expert e) in the row layout
    const at = (q: number, e: number) => {
      if (!received) return sorted.start[this.local[0] + e];
      let off = srcStart[q];
      for (let f = 0; f < e; f++) off += received.meta[q * El + f];
      return off;
    };
    for (let e = 0; e < El; e++) {
      const parts: [number, number][] = [];
      let total = 0;
      for (let q = 0; q < n; q++) {
        const c = count(q, e);
        if (c > 0) parts.push([at(q, e), c]);
        total += c;
      }
      if (total === 0) continue;
      const input = gatherRows(rows, parts, total, H);
      const t = performance.now();
      const y = (await this.experts[e].run({ rows: new ort.Tensor('float32', input, [total, H]) })).out.data as Float32Array;
      span(`e${this.local[0] + e}`, t, 'compute');
      let o = 0;
      for (const [p0, c] of parts) {
        result.set(y.subarray(o * H, (o + c) * H), p0 * H);
        o += c;
      }
    }
    return result;
  }

  /** The class all-gathers its members' shares of `out`, or tensor-parallel experts all-reduce it. */
  private async finish(out: Float32Array, real: number, r0: number, r1: number, span: (what: string, start: number, cat: 'compute' | 'comm') => void): Promise<void> {
    const H = this.s.hidden;
    if (this.cls) {
      const t = performance.now();
      const counts = Array.from({ length: this.cls.size }, (_, c) => {
        const [a, b] = splitEven(real, this.cls!.size, c);
        return (b - a) * H;
      });
      out.set(await this.cls.comm.allGather(out.subarray(r0 * H, r1 * H), counts), 0);
      span('all_gather', t, 'comm');
    } else if (this.reduce) {
      const t = performance.now();
      await this.reduce.allReduce(out);
      span('all_reduce', t, 'comm');
    }
  }

  async release(): Promise<void> {
    await Promise.all([this.router.release(), ...this.experts.map((s) => s.release())]);
  }
}

/** The rows of `parts` ([first row, count]…) of `src` as one (total, H) block (a view when there is one part). */
function gatherRows(src: Float32Array, parts: [number, number][], total: number, H: number): Float32Array {
  if (parts.length === 1) return src.subarray(parts[0][0] * H, (parts[0][0] + total) * H);
  const out = new Float32Array(total * H);
  let o = 0;
  for (const [p0, c] of parts) {
    out.set(src.subarray(p0 * H, (p0 + c) * H), o * H);
    o += c;
  }
  return out;
}

function checkWeights(layer: number, w: MoeWeights, s: MoeShape, [e0, e1]: [number, number]): void {
  const ids = w.experts.map((e) => e.id);
  const want = Array.from({ length: e1 - e0 }, (_, i) => e0 + i);
  if (ids.join() !== want.join()) throw new Error(`MoE layer ${layer}: holds experts [${ids}], expected [${want}] for this rank's ep shard`);
  if (w.router.length !== s.hidden * s.experts) throw new Error(`MoE layer ${layer}: router has ${w.router.length} values, expected ${s.hidden}×${s.experts}`);
}

/** Claims every MoE piece. */
export const moeBlocks: BlockFactory = async (piece, env) => (piece.kind === 'moe' ? MoeBlock.create(piece, env) : null);
