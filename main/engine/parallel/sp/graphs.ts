/**
 * Graphs of sequence-parallel attention (Ulysses, Ring, USP). The attention
 * sublayer is cut in three so collectives can sit between the pieces:
 *
 *   qkv   (x, delta, positions) → resid, q, k, v      addNorm, projection, q/k norm, RoPE
 *   core  (q, k, v, mask, o_acc, lse_acc) → o, lse    one block of attention, merged into the accumulator
 *   out   (attn) → delta                              o_proj
 *
 * Layouts are sequence-major, (S, B, heads, D): appending tokens to a cache,
 * concatenating the chunks of several ranks and cutting a block of rows are
 * all contiguous copies; the graphs transpose to (B, heads, S, D) inside.
 *
 * The core computes softmax attention of a block of queries against a block
 * of keys with an additive mask (0 / −1e30, from absolute positions) and folds
 * the result into a running (o, lse) with the log-sum-exp merge, in fp32:
 *   m = max(lse_acc, lse),  w_acc = e^(lse_acc − m),  w = e^(lse − m)
 *   o' = (w_acc·o_acc + w·o) / (w_acc + w),  lse' = m + log(w_acc + w)
 * so ring attention over any number of blocks, in any order, gives exactly
 * softmax over all keys. −1e30 instead of −∞ keeps fully masked rows finite
 * (their weight underflows to 0 in the merge).
 */
import { GraphBuilder } from '../../graph/onnx';
import { addNorm, qkNorm } from '../../graph/layers';
import type { AttnWeights, RopeTables } from '../../graph/layers';

const MS = 'com.microsoft';

/** Large finite negative used for masked scores and an empty accumulator. */
export const MASKED = -1e30;

export interface SpQkvShape {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  /** first sublayer of the shard's stream (no delta input) */
  first: boolean;
}

/** (x[, delta], positions) → x_out (B,S,H), q (S,B,N·D), k (S,B,KV·D), v (S,B,KV·D); RoPE applied to q and k. */
export function buildSpQkv(name: string, w: AttnWeights, s: SpQkvShape, rope: RopeTables): { bytes: Uint8Array; weightBytes: number } {
  const g = new GraphBuilder(name);
  const { hidden: H, heads: N, kvHeads: KV, headDim: D } = s;
  const x = g.input('x', 'float32', ['batch', 'seq', H]);
  const delta = s.first ? null : g.input('delta', 'float32', ['batch', 'seq', H]);
  const positions = g.input('positions', 'int64', ['batch', 'seq']);
  const cos = g.init('rope.cos', rope.cos, [rope.maxSeq, rope.cos.length / rope.maxSeq]);
  const sin = g.init('rope.sin', rope.sin, [rope.maxSeq, rope.sin.length / rope.maxSeq]);
  const [normed, resid] = addNorm(g, 'attn.input', { x, delta }, w.inputNorm, H, s.eps);
  const qd = N * D;
  const kvd = KV * D;
  let qkv = g.op('MatMul', [normed, g.init('attn.wqkv', w.wqkv, [H, qd + 2 * kvd])]);
  if (w.bqkv) qkv = g.op('Add', [qkv, g.init('attn.bqkv', w.bqkv, [qd + 2 * kvd])]);
  let [q, k, v] = g.node('Split', [qkv, g.ints([qd, kvd, kvd])], 3, { axis: -1 });
  if (w.qNorm && w.kNorm) {
    q = qkNorm(g, 'attn.qnorm', q, w.qNorm, N, D, s.eps);
    k = qkNorm(g, 'attn.knorm', k, w.kNorm, KV, D, s.eps);
  }
  const rot = (t: string, n: number) => g.op('RotaryEmbedding', [t, positions, cos, sin], { interleaved: 0, num_heads: n }, MS);
  const seqMajor = (t: string) => g.op('Transpose', [t], { perm: [1, 0, 2] });
  g.node('Identity', [resid], ['x_out']);
  g.node('Identity', [seqMajor(rot(q, N))], ['q']);
  g.node('Identity', [seqMajor(rot(k, KV))], ['k']);
  g.node('Identity', [seqMajor(v)], ['v']);
  g.output('x_out', 'float32', ['batch', 'seq', H]);
  g.output('q', 'float32', ['seq', 'batch', qd]);
  g.output('k', 'float32', ['seq', 'batch', kvd]);
  g.output('v', 'float32', ['seq', 'batch', kvd]);
  return { bytes: g.toBytes(), weightBytes: g.weightBytes };
}

/**
 * One block of attention merged into an accumulator. Inputs: q (Sq,B,nq,D),
 * k/v (T,B,nkv,D), mask (Sq,T), o_acc (Sq,B,nq,D), lse_acc (Sq,B,nq).
 * Outputs o (Sq,B,nq,D), lse (Sq,B,nq). Query head h reads kv head ⌊h/G⌋.
 * No weights: one session serves every layer.
 */
export function buildSpCore(nq: number, nkv: number, D: number): Uint8Array {
  const g = new GraphBuilder('sp.core');
  const G = nq / nkv;
  const q = g.input('q', 'float32', ['sq', 'batch', nq, D]);
  const k = g.input('k', 'float32', ['t', 'batch', nkv, D]);
  const v = g.input('v', 'float32', ['t', 'batch', nkv, D]);
  const mask = g.input('mask', 'float32', ['sq', 't']);
  const oAcc = g.input('o_acc', 'float32', ['sq', 'batch', nq, D]);
  const lseAcc = g.input('lse_acc', 'float32', ['sq', 'batch', nq]);
  const scale = g.init('scale', Float32Array.from([1 / Math.sqrt(D)]), []);
  const axisLast = g.ints([-1]);
  // (Sq,B,nq,D) → (B,nq,Sq,D) → (B,nkv,G·Sq,D): row g·Sq+i is query i of group member g
  const qg = g.op('Reshape', [g.op('Mul', [g.op('Transpose', [q], { perm: [1, 2, 0, 3] }), scale]), g.ints([0, nkv, -1, D])]);
  const kt = g.op('Transpose', [k], { perm: [1, 2, 3, 0] }); // (B,nkv,D,T)
  const vt = g.op('Transpose', [v], { perm: [1, 2, 0, 3] }); // (B,nkv,T,D)
  const tiled = G === 1 ? mask : g.op('Tile', [mask, g.ints([G, 1])]);
  const scores = g.op('Add', [g.op('MatMul', [qg, kt]), tiled]); // (B,nkv,G·Sq,T)
  const m = g.op('ReduceMax', [scores, axisLast], { keepdims: 1 });
  const e = g.op('Exp', [g.op('Sub', [scores, m])]);
  const l = g.op('ReduceSum', [e, axisLast], { keepdims: 1 });
  const oBlk = g.op('Div', [g.op('MatMul', [e, vt]), l]); // (B,nkv,G·Sq,D)
  const lseBlk = g.op('Add', [m, g.op('Log', [l])]); // (B,nkv,G·Sq,1)
  const o = g.op('Transpose', [g.op('Reshape', [oBlk, g.ints([0, nq, -1, D])])], { perm: [2, 0, 1, 3] }); // (Sq,B,nq,D)
  const lse = g.op('Transpose', [g.op('Reshape', [lseBlk, g.ints([0, nq, -1])])], { perm: [2, 0, 1] }); // (Sq,B,nq)
  // log-sum-exp merge with the accumulator
  const mx = g.op('Max', [lseAcc, lse]);
  const wAcc = g.op('Exp', [g.op('Sub', [lseAcc, mx])]);
  const wNew = g.op('Exp', [g.op('Sub', [lse, mx])]);
  const den = g.op('Add', [wAcc, wNew]);
  const u = (t: string) => g.op('Unsqueeze', [t, axisLast]);
  const num = g.op('Add', [g.op('Mul', [oAcc, u(wAcc)]), g.op('Mul', [o, u(wNew)])]);
  g.node('Div', [num, u(den)], ['o']);
  g.node('Add', [mx, g.op('Log', [den])], ['lse']);
  g.output('o', 'float32', ['sq', 'batch', nq, D]);
  g.output('lse', 'float32', ['sq', 'batch', nq]);
  return g.toBytes();
}

/** attn (S,B,N·D) → delta (B,S,H) = attn · Wo. */
export function buildSpOut(name: string, wo: Float32Array, qd: number, hidden: number): { bytes: Uint8Array; weightBytes: number } {
  const g = new GraphBuilder(name);
  const attn = g.input('attn', 'float32', ['seq', 'batch', qd]);
  const bsh = g.op('Transpose', [attn], { perm: [1, 0, 2] });
  g.node('MatMul', [bsh, g.init('attn.wo', wo, [qd, hidden])], ['delta']);
  g.output('delta', 'float32', ['batch', 'seq', hidden]);
  return { bytes: g.toBytes(), weightBytes: g.weightBytes };
}
