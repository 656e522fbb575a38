/**
 * DeepSpeed-Ulysses (Jacobs et al. 2023): trade a sequence split for a head
 * split with an all-to-all inside the Ulysses group of U ranks, so that
 * attention itself needs no communication.
 *
 *   ulyssesSwap   forward, after the qkv graph: I send member u' my tokens'
 *                 q, k, v of u's heads and receive every member's tokens of
 *                 my heads — (my tokens, all heads) → (the group's tokens,
 *                 my N/U heads). Sent Σ_{u'≠me} Sl·B·(nq(u')+2·nkv(u'))·D floats.
 *   ulyssesBack   after attention: my heads' outputs of every member's
 *                 tokens → all heads of my tokens. Sent Σ_{u'≠me} t(u')·B·nq·D.
 *   gatherHeads   decode (every rank holds the step's tokens): an all-gather
 *                 of each member's heads instead. S·B·nq(u)·D per member.
 *
 * Layouts are sequence-major (rows × heads × D, a row = one token of one
 * sequence): cutting heads out of rows and putting them back are the pure
 * sliceHeads / placeHeads. The bytes in closed form: sp/comm.ts.
 */
import type { Communicator } from '../../comm/communicator';
import { kvHeadRange, splitEven } from '../split';
import type { Range } from '../split';

/** The query heads of Ulysses member u of U (of N), and the KV heads they read (of KV). */
export function ulyssesHeads(N: number, KV: number, U: number, u: number): { hq: Range; hkv: Range } {
  const hq = splitEven(N, U, u);
  return { hq, hkv: kvHeadRange(N, KV, hq[0], hq[1]) };
}

/** Copy heads [h0, h1) of every row of `src` (rows × heads × D) into dst at `off`; returns the new offset. */
export function sliceHeads(src: Float32Array, rows: number, heads: number, D: number, [h0, h1]: Range, dst: Float32Array, off: number): number {
  const w = (h1 - h0) * D;
  for (let r = 0; r < rows; r++) {
    const s = (r * heads + h0) * D;
    dst.set(src.subarray(s, s + w), off);
    off += w;
  }
  return off;
}

/** Heads [h0, h1) of every row, as a new (rows × (h1−h0) × D) array. */
export function sliceHeadsNew(src: Float32Array, rows: number, heads: number, D: number, h: Range): Float32Array {
  const dst = new Float32Array(rows * (h[1] - h[0]) * D);
  sliceHeads(src, rows, heads, D, h, dst, 0);
  return dst;
}

/** Inverse of sliceHeads: rows × (h1−h0) × D into heads [h0, h1) of dst (rows × heads × D). */
export function placeHeads(src: Float32Array, rows: number, heads: number, D: number, [h0, h1]: Range, dst: Float32Array): void {
  const w = (h1 - h0) * D;
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * w, (r + 1) * w), (r * heads + h0) * D);
}

/** The shape of one Ulysses exchange: B sequences, N query / KV heads of D floats, U members. */
export interface UlyssesShape {
  B: number;
  N: number;
  KV: number;
  D: number;
  U: number;
  /** my Ulysses index */
  u: number;
}

/**
 * Forward all-to-all: q (Sl,B,N·D), k/v (Sl,B,KV·D) of my Sl tokens → my
 * heads of every member's tokens, in member order: q (T,B,nq·D), k/v (T,B,nkv·D),
 * T = Σ memberTokens.
 */
export async function ulyssesSwap(comm: Communicator, g: UlyssesShape, q: Float32Array, k: Float32Array, v: Float32Array, Sl: number, memberTokens: number[]): Promise<{ q: Float32Array; k: Float32Array; v: Float32Array }> {
  const { B, N, KV, D, U } = g;
  const ranges = Array.from({ length: U }, (_, uu) => ulyssesHeads(N, KV, U, uu));
  const { hq, hkv } = ranges[g.u];
  const nq = hq[1] - hq[0];
  const nkv = hkv[1] - hkv[0];
  const sendCounts = ranges.map(({ hq: a, hkv: b }) => Sl * B * (a[1] - a[0] + 2 * (b[1] - b[0])) * D);
  const send = new Float32Array(sendCounts.reduce((x, y) => x + y, 0));
  let off = 0;
  for (const r of ranges) {
    off = sliceHeads(q, Sl * B, N, D, r.hq, send, off);
    off = sliceHeads(k, Sl * B, KV, D, r.hkv, send, off);
    off = sliceHeads(v, Sl * B, KV, D, r.hkv, send, off);
  }
  const got = await comm.allToAllV(send, sendCounts, memberTokens.map((t) => t * B * (nq + 2 * nkv) * D));
  const T = memberTokens.reduce((a, b) => a + b, 0);
  const out = { q: new Float32Array(T * B * nq * D), k: new Float32Array(T * B * nkv * D), v: new Float32Array(T * B * nkv * D) };
  let src = 0;
  let row = 0;
  for (const t of memberTokens) {
    const nQ = t * B * nq * D;
    const nK = t * B * nkv * D;
    out.q.set(got.subarray(src, src + nQ), row * B * nq * D);
    out.k.set(got.subarray(src + nQ, src + nQ + nK), row * B * nkv * D);
    out.v.set(got.subarray(src + nQ + nK, src + nQ + 2 * nK), row * B * nkv * D);
    src += nQ + 2 * nK;
    row += t;
  }
  return out;
}

/** Back all-to-all: o (T,B,nq·D) of my heads over every member's tokens → attn (Sl,B,N·D) of my tokens, all heads. */
export async function ulyssesBack(comm: Communicator, g: UlyssesShape, o: Float32Array, Sl: number, memberTokens: number[]): Promise<Float32Array> {
  const { B, N, D, U } = g;
  const heads = Array.from({ length: U }, (_, uu) => splitEven(N, U, uu));
  const nq = heads[g.u][1] - heads[g.u][0];
  // I send each member its tokens of my heads, and get my tokens of each member's heads
  const got = await comm.allToAllV(o, memberTokens.map((t) => t * B * nq * D), heads.map(([a, b]) => Sl * B * (b - a) * D));
  const attn = new Float32Array(Sl * B * N * D);
  let off = 0;
  for (const hq of heads) {
    const n = Sl * B * (hq[1] - hq[0]) * D;
    placeHeads(got.subarray(off, off + n), Sl * B, N, D, hq, attn);
    off += n;
  }
  return attn;
}

/** Decode: every member's heads of the same rows (S·B of them) → all heads. */
export async function gatherHeads(comm: Communicator, g: UlyssesShape, o: Float32Array, rows: number): Promise<Float32Array> {
  const { N, D, U } = g;
  const all = await comm.allGather(o);
  const attn = new Float32Array(rows * N * D);
  let off = 0;
  for (let uu = 0; uu < U; uu++) {
    const hq = splitEven(N, U, uu);
    const n = rows * (hq[1] - hq[0]) * D;
    placeHeads(all.subarray(off, off + n), rows, N, D, hq, attn);
    off += n;
  }
  return attn;
}
