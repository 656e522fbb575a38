/**
 * The Mixture-of-Experts sublayer as an executor block (one per MoE layer),
 * with expert parallelism's dispatch and combine around the experts:
 *
 *   1. resid = x + delta for every row; this rank's share of the real rows
 *      (its token class splits them, parallel/expert.ts tokenClass) goes
 *      through the router graph → normed rows, top-k ids and weights, and the
 *      gated shared expert.
 *   2. Each routed (row, slot) pair becomes one row for the expert's owner,
 *      ordered by owner rank, then expert, then (row, slot).
 *      EP: all_to_all #1 sends every owner a header with how many rows per
 *      expert it gets (E_p int32) followed by the normed rows themselves
 *      (only routed rows: Σ counts × H floats); one collective, not two, as
 *      each collective costs a wake-up of the peers.
 *   3. Each local expert runs once on all rows routed to it (one session run).
 *   4. EP: all_to_all #2 sends the expert outputs back in the same layout.
 *   5. On the home rank: out[row] = Σ_slot w_slot·y_slot (+ shared), in slot
 *      order; then the class all-gathers its shares (tp ranks in the ep group),
 *      or, for tensor-parallel experts without EP, the partial sums are
 *      all-reduced over tp. Returns (resid, out): the residual scheme of
 *      layers.ts (the next sublayer adds `out` into its addNorm).
 *
 * tp=N,ep=N alternative (plan ep.tpTokens = 'allreduce', PARALAB_EP_TP=allreduce):
 * no dispatch; every rank routes all tokens, runs its experts on the rows
 * routed to them, and the partial outputs are all-reduced over the ep group
 * (= the tp group). The all-to-alls of steps 2 and 4 and the gather are skipped.
 *
 * Ghost rows. Data-parallel replicas that share an ep group step in
 * lockstep; a replica with fewer (or no) sequences is padded with ghost
 * sequences (engine.ts) so every replica runs the same micro-batches. Ghost
 * rows are never routed: they move no bytes, count no load, and their output
 * is zero. The rank marks each micro-batch state with its real sequence
 * count (markRealSequences).
 *
 * Expert load (rows routed per layer × expert, by this rank's share) is
 * collected per step and taken by the rank with takeMoeStats(). Every session
 * run and collective is a span in the step's timings ('comm' spans count as
 * communication time in stage.ts).
 */
import { registerBlockFactory } from './blocks';
import type { BlockEnv } from './blocks';
import { buildExpertGraph, buildRouterGraph } from '../graph/moe';
import type { MoeShape, MoeWeights } from '../graph/moe';
import type { Piece } from '../graph/segments';
import { createSession, ort } from '../runtime/ort';
import type { BatchState, Block, BlockState, BlockStep, StreamTensors } from '../runtime/executor';
import { recordSpan } from '../runtime/executor';
import type { Communicator } from '../comm/communicator';
import { asF32, asI32 } from '../comm/communicator';
import { expertRange, tokenClass } from '../parallel/expert';
import { splitEven } from '../parallel/split';

/** What a rank reports about its MoE blocks for one step. */
export interface MoeStepStats {
  /** per layer: rows this rank routed to each expert (its share, real rows only) */
  routed: Record<number, number[]>;
}

let pending: MoeStepStats = { routed: {} };

/** The MoE counters since the last call (null when nothing was routed). */
export function takeMoeStats(): MoeStepStats | null {
  const s = pending;
  pending = { routed: {} };
  return Object.keys(s.routed).length === 0 ? null : s;
}

const REAL = 'moe.real';
interface RealSeqs extends BlockState {
  real: number;
}

/**
 * Mark micro-batch states whose trailing sequences are ghosts (lockstep
 * padding): `real` of the batch's sequences are real, the rest are not routed.
 */
export function markRealSequences(mb: { states: BatchState[]; ranges: [number, number][] }, real: number): void {
  mb.states.forEach((st, m) => {
    const [a, b] = mb.ranges[m];
    const r: RealSeqs = { kvBytes: () => 0, real: Math.max(0, Math.min(real - a, b - a)) };
    st.blocks.set(REAL, r);
  });
}

function realSeqs(state: BatchState): number {
  const r = state.blocks.get(REAL) as RealSeqs | undefined;
  return r ? r.real : state.batch;
}

type Session = ort.InferenceSession;

export class MoeBlock implements Block {
  readonly kind = 'block' as const;
  readonly layers: number[] = [];
  readonly name: string;
  readonly weightBytes: number;
  private readonly local: [number, number];
  /** first expert of each ep rank, and E_p per ep rank */
  private readonly epStarts: number[];
  private readonly epSizes: number[];

  private constructor(
    readonly layer: number,
    private readonly s: MoeShape,
    private readonly router: Session,
    private readonly experts: Session[],
    weightBytes: number,
    /** dispatch / combine group (null: no rows move; the local experts run on the rows routed to them here) */
    private readonly dispatch: Communicator | null,
    /** token class: who shares this rank's tokens and through which group their shares are gathered */
    private readonly cls: { comm: Communicator; size: number; index: number } | null,
    /** all-reduce of partial outputs: tp for tensor-parallel experts (ep=1), ep in the all-reduce EP mode */
    private readonly reduce: Communicator | null,
    /** whether this rank's routed counts are its own (false: a peer reports the same routing) */
    private readonly reports: boolean,
    /** whether this rank adds the shared expert (false where an all-reduce would add it twice) */
    private readonly sharedHere: boolean,
    /** experts held here */
    local: [number, number],
  ) {
    this.name = `moe${layer}`;
    this.weightBytes = weightBytes;
    const n = dispatch?.size ?? 1;
    this.epStarts = Array.from({ length: n }, (_, p) => expertRange(s.experts, n, p)[0]);
    this.epSizes = Array.from({ length: n }, (_, p) => {
      const [a, b] = expertRange(s.experts, n, p);
      return b - a;
    });
    this.local = local;
  }

  static async create(piece: Extract<Piece, { kind: 'moe' }>, env: BlockEnv): Promise<MoeBlock> {
    const { w, s } = piece;
    const plan = env.init.plan;
    const epOn = !!plan.ep && plan.ep.size > 1;
    const ep = epOn ? env.group('ep') : null;
    if (epOn && !ep) throw new Error(`rank ${env.init.rank}: ep=${plan.ep!.size} but no 'ep' group in its links`);
    // tp=N,ep=N alternative (PARALAB_EP_TP=allreduce): no dispatch, every rank runs its experts on
    // the rows routed to them among all tokens, and the partial outputs are all-reduced over ep.
    const allreduce = epOn && plan.ep!.tpTokens === 'allreduce' && plan.tp.size === plan.ep!.size;
    const tc = allreduce ? null : tokenClass(plan);
    let cls: MoeBlock['cls'] = null;
    if (tc) {
      const comm = tc.via === 'ep' ? ep : env.group('tp');
      if (!comm) throw new Error(`rank ${env.init.rank}: no '${tc.via}' group to gather the token shares of its ep group over`);
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
    const x = stream.x;
    const resid = new Float32Array(T * H);
    if (stream.delta) for (let i = 0; i < resid.length; i++) resid[i] = x[i] + stream.delta[i];
    else resid.set(x.subarray(0, T * H));
    const real = realSeqs(state) * step.S;
    const [r0, r1] = this.cls ? splitEven(real, this.cls.size, this.cls.index) : [0, real];
    const N = r1 - r0;
    const out = new Float32Array(T * H);
    const span = (what: string, start: number, cat: 'compute' | 'comm') => recordSpan(step.timings, `${this.name} ${what}`, start, cat);

    // 1. route this rank's share
    let normed: Float32Array = new Float32Array(0);
    let weights: Float32Array = new Float32Array(0);
    let ids: BigInt64Array = new BigInt64Array(0);
    let shared: Float32Array | null = null;
    if (N > 0) {
      const t = performance.now();
      const o = await this.router.run({ h: new ort.Tensor('float32', resid.subarray(r0 * H, r1 * H), [N, H]) });
      normed = o.normed.data as Float32Array;
      weights = o.weights.data as Float32Array;
      ids = o.ids.data as BigInt64Array;
      shared = o.shared ? (o.shared.data as Float32Array) : null;
      span('router', t, 'compute');
    }

    // 2. rows for each expert, grouped by owner then expert (counting sort)
    const E = this.s.experts;
    const cnt = new Int32Array(E);
    for (let i = 0; i < N * K; i++) cnt[Number(ids[i])]++;
    if (this.reports && N > 0) {
      const acc = (pending.routed[this.layer] ??= new Array<number>(E).fill(0));
      for (let e = 0; e < E; e++) acc[e] += cnt[e];
    }
    const start = new Int32Array(E + 1);
    for (let e = 0; e < E; e++) start[e + 1] = start[e] + cnt[e];
    const fill = start.slice(0, E);
    const entry = new Int32Array(N * K); // (row, slot) → position in the send layout
    const send = new Float32Array(N * K * H);
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < K; j++) {
        const pos = fill[Number(ids[i * K + j])]++;
        entry[i * K + j] = pos;
        send.set(normed.subarray(i * H, (i + 1) * H), pos * H);
      }
    }

    // EP dispatch: one message per peer, [rows per expert of that peer (E_p int32) | the rows]
    const n = this.dispatch?.size ?? 1;
    const rowsTo = this.epStarts.map((e0, p) => start[e0 + this.epSizes[p]] - start[e0]);
    let recv: Float32Array = send;
    let recvMeta = cnt; // [source][local expert]
    let rowsFrom = rowsTo;
    if (this.dispatch) {
      const El = this.epSizes[this.dispatch.rank];
      const sendCounts = this.epSizes.map((Ep, p) => Ep + rowsTo[p] * H);
      const msg = new Float32Array(sendCounts.reduce((a, b) => a + b, 0));
      let o = 0;
      this.epStarts.forEach((e0, p) => {
        msg.set(asF32(cnt.subarray(e0, e0 + this.epSizes[p])), o);
        o += this.epSizes[p];
        msg.set(send.subarray(start[e0] * H, (start[e0] + rowsTo[p]) * H), o);
        o += rowsTo[p] * H;
      });
      const tc = performance.now();
      const got = await this.dispatch.allToAllV(msg, sendCounts, null);
      span('dispatch all_to_all', tc, 'comm');
      recvMeta = new Int32Array(n * El);
      rowsFrom = [];
      const pieces: [number, number][] = [];
      o = 0;
      for (let q = 0; q < n; q++) {
        const c = asI32(got.subarray(o, o + El));
        recvMeta.set(c, q * El);
        const rows = c.reduce((a, b) => a + b, 0);
        rowsFrom.push(rows);
        pieces.push([o + El, rows * H]);
        o += El + rows * H;
      }
      recv = new Float32Array(rowsFrom.reduce((a, b) => a + b, 0) * H);
      let r = 0;
      for (const [at, len] of pieces) {
        recv.set(got.subarray(at, at + len), r);
        r += len;
      }
    }

    // 3. each local expert once over all its rows (sources in rank order)
    const El = this.local[1] - this.local[0];
    const result = new Float32Array(recv.length);
    const srcStart: number[] = [0];
    for (let q = 0; q < n; q++) srcStart.push(srcStart[q] + rowsFrom[q]);
    // position of (source q, local expert e) in the receive layout (without dispatch: the send layout)
    const at = (q: number, e: number) => {
      if (!this.dispatch) return start[this.local[0] + e];
      let off = srcStart[q];
      for (let f = 0; f < e; f++) off += recvMeta[q * El + f];
      return off;
    };
    for (let e = 0; e < El; e++) {
      const parts: [number, number][] = [];
      let rows = 0;
      for (let q = 0; q < n; q++) {
        const c = this.dispatch ? recvMeta[q * El + e] : cnt[this.local[0] + e];
        if (c > 0) parts.push([at(q, e), c]);
        rows += c;
      }
      if (rows === 0) continue;
      let input: Float32Array;
      if (parts.length === 1) input = recv.subarray(parts[0][0] * H, (parts[0][0] + rows) * H);
      else {
        input = new Float32Array(rows * H);
        let o = 0;
        for (const [p0, c] of parts) {
          input.set(recv.subarray(p0 * H, (p0 + c) * H), o * H);
          o += c;
        }
      }
      const te = performance.now();
      const y = (await this.experts[e].run({ rows: new ort.Tensor('float32', input, [rows, H]) })).out.data as Float32Array;
      span(`e${this.local[0] + e}`, te, 'compute');
      let o = 0;
      for (const [p0, c] of parts) {
        result.set(y.subarray(o * H, (o + c) * H), p0 * H);
        o += c;
      }
    }

    // 4. EP: outputs back to the rows' home ranks
    let back: Float32Array = result;
    if (this.dispatch) {
      const tc = performance.now();
      back = await this.dispatch.allToAllV(result, rowsFrom.map((r) => r * H), rowsTo.map((r) => r * H));
      span('combine all_to_all', tc, 'comm');
    }

    // 5. weighted sum in slot order, then the shared expert
    for (let i = 0; i < N; i++) {
      const o = (r0 + i) * H;
      for (let j = 0; j < K; j++) {
        const wgt = weights[i * K + j];
        const src = entry[i * K + j] * H;
        for (let d = 0; d < H; d++) out[o + d] += wgt * back[src + d];
      }
      if (shared && this.sharedHere) for (let d = 0; d < H; d++) out[o + d] += shared[i * H + d];
    }
    if (this.cls) {
      const tc = performance.now();
      const counts = Array.from({ length: this.cls.size }, (_, c) => {
        const [a, b] = splitEven(real, this.cls!.size, c);
        return (b - a) * H;
      });
      const all = await this.cls.comm.allGather(out.subarray(r0 * H, r1 * H), counts);
      out.set(all, 0);
      span('all_gather', tc, 'comm');
    } else if (this.reduce) {
      const tc = performance.now();
      await this.reduce.allReduce(out);
      span('all_reduce', tc, 'comm');
    }
    return { x: resid, delta: out };
  }

  async release(): Promise<void> {
    await Promise.all([this.router.release(), ...this.experts.map((s) => s.release())]);
  }
}

function checkWeights(layer: number, w: MoeWeights, s: MoeShape, [e0, e1]: [number, number]): void {
  const ids = w.experts.map((e) => e.id);
  const want = Array.from({ length: e1 - e0 }, (_, i) => e0 + i);
  if (ids.join() !== want.join()) throw new Error(`MoE layer ${layer}: holds experts [${ids}], expected [${want}] for this rank's ep shard`);
  if (w.router.length !== s.hidden * s.experts) throw new Error(`MoE layer ${layer}: router has ${w.router.length} values, expected ${s.hidden}×${s.experts}`);
}

registerBlockFactory(async (piece, env) => (piece.kind === 'moe' ? MoeBlock.create(piece, env) : null));
