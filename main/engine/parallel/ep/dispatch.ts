/**
 * Expert parallelism's all-to-all: dispatch the routed rows to the ranks
 * that own their experts, combine the expert outputs back on the rows' home
 * rank. The pure layouts are here beside the two calls.
 *
 * Send layout. Each routed (row, slot) pair becomes one row for the expert's
 * owner, ordered by owner rank, then expert, then (row, slot) — a counting
 * sort by expert id (sortByExpert), since owners hold contiguous experts.
 *
 * all_to_all #1 (dispatch): to every ep peer p one message
 *     [rows per expert of p (E_p int32, as float32 bits) | those rows (Σ·H floats)]
 *   — one collective, not two (a header exchange first), as each collective
 *   costs a wake-up of the peers. Bytes per rank: sent 4·(E − E_me) + 4H·(rows
 *   this rank routed to other ranks' experts), received 4·(n−1)·E_me + 4H·(rows
 *   other ranks routed to mine) (ep/comm.ts).
 * all_to_all #2 (combine): the expert outputs back in the same layout, rows
 *   only (the counts are known from #1): the same bytes with sent and received
 *   swapped.
 */
import type { Communicator } from '../../comm/communicator';
import { asF32, asI32 } from '../../comm/communicator';

/** The send layout of one rank's routed rows (see the header). */
export interface Routed {
  /** rows per expert (E) */
  cnt: Int32Array;
  /** first row of each expert in `send` (E + 1 entries) */
  start: Int32Array;
  /** (row, slot) → its row in `send` */
  entry: Int32Array;
  /** the routed rows (N·K, H), grouped by expert */
  send: Float32Array;
}

/** Counting sort of N rows × K slots by expert id: normed (N,H), ids (N,K) → the send layout. */
export function sortByExpert(normed: Float32Array, ids: BigInt64Array, N: number, K: number, E: number, H: number): Routed {
  const cnt = new Int32Array(E);
  for (let i = 0; i < N * K; i++) cnt[Number(ids[i])]++;
  const start = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) start[e + 1] = start[e] + cnt[e];
  const fill = start.slice(0, E);
  const entry = new Int32Array(N * K);
  const send = new Float32Array(N * K * H);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < K; j++) {
      const pos = fill[Number(ids[i * K + j])]++;
      entry[i * K + j] = pos;
      send.set(normed.subarray(i * H, (i + 1) * H), pos * H);
    }
  }
  return { cnt, start, entry, send };
}

/** Which experts each ep rank owns: first expert and count per rank. */
export interface Owners {
  starts: number[];
  sizes: number[];
}

/** Rows this rank routes to each ep rank. */
export function rowsPerOwner(r: Routed, owners: Owners): number[] {
  return owners.starts.map((e0, p) => r.start[e0 + owners.sizes[p]] - r.start[e0]);
}

/** The dispatch message: per peer [its experts' row counts | its rows]; and the floats for each peer. */
export function packDispatch(r: Routed, owners: Owners, H: number): { msg: Float32Array; counts: number[] } {
  const rowsTo = rowsPerOwner(r, owners);
  const counts = owners.sizes.map((Ep, p) => Ep + rowsTo[p] * H);
  const msg = new Float32Array(counts.reduce((a, b) => a + b, 0));
  let o = 0;
  owners.starts.forEach((e0, p) => {
    msg.set(asF32(r.cnt.subarray(e0, e0 + owners.sizes[p])), o);
    o += owners.sizes[p];
    msg.set(r.send.subarray(r.start[e0] * H, (r.start[e0] + rowsTo[p]) * H), o);
    o += rowsTo[p] * H;
  });
  return { msg, counts };
}

/** What a rank received: per source, rows per local expert ([source][local expert]), rows per source, and the rows in source order. */
export interface Received {
  meta: Int32Array;
  rowsFrom: number[];
  rows: Float32Array;
}

/** Split the received dispatch messages (n sources, El local experts) into counts and rows. */
export function unpackDispatch(got: Float32Array, n: number, El: number, H: number): Received {
  const meta = new Int32Array(n * El);
  const rowsFrom: number[] = [];
  const pieces: [number, number][] = [];
  let o = 0;
  for (let q = 0; q < n; q++) {
    const c = asI32(got.subarray(o, o + El));
    meta.set(c, q * El);
    const rows = c.reduce((a, b) => a + b, 0);
    rowsFrom.push(rows);
    pieces.push([o + El, rows * H]);
    o += El + rows * H;
  }
  const rows = new Float32Array(rowsFrom.reduce((a, b) => a + b, 0) * H);
  let at = 0;
  for (const [p, len] of pieces) {
    rows.set(got.subarray(p, p + len), at);
    at += len;
  }
  return { meta, rowsFrom, rows };
}

/** all_to_all #1: this rank's routed rows to their experts' owners. */
export async function dispatch(ep: Communicator, r: Routed, owners: Owners, H: number): Promise<Received> {
  const { msg, counts } = packDispatch(r, owners, H);
  const got = await ep.allToAllV(msg, counts, null);
  return unpackDispatch(got, ep.size, owners.sizes[ep.rank], H);
}

/** all_to_all #2: the expert outputs (in the received layout) back to their rows' home ranks, in the send layout. */
export function combine(ep: Communicator, outputs: Float32Array, rowsFrom: number[], rowsTo: number[], H: number): Promise<Float32Array> {
  return ep.allToAllV(outputs, rowsFrom.map((r) => r * H), rowsTo.map((r) => r * H));
}

/**
 * On the home rank: out[row] = Σ_slot w_slot·y_slot (+ shared), in slot
 * order, for rows [r0, r0 + N) of `out`; `back` holds the expert outputs in
 * the send layout, `entry` maps (row, slot) into it.
 */
export function weightedSum(out: Float32Array, back: Float32Array, weights: Float32Array, entry: Int32Array, shared: Float32Array | null, r0: number, N: number, K: number, H: number): void {
  for (let i = 0; i < N; i++) {
    const o = (r0 + i) * H;
    for (let j = 0; j < K; j++) {
      const wgt = weights[i * K + j];
      const src = entry[i * K + j] * H;
      for (let d = 0; d < H; d++) out[o + d] += wgt * back[src + d];
    }
    if (shared) for (let d = 0; d < H; d++) out[o + d] += shared[i * H + d];
  }
}
