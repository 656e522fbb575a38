/**
 * Graphs of Megatron sequence parallelism (tp=N,sp_impl=megatron): each
 * sublayer is cut at its norm, because the norm runs on this rank's
 * sequence shard while the projections need the whole sequence:
 *
 *   norm  (x, delta) shard → normed shard, resid shard      (then all-gather along the sequence)
 *   body  normed (B,S,H) → partial out (B,S,H)              (then reduce-scatter along the sequence)
 *
 * The body is the tensor-parallel sublayer without its addNorm (layers.ts,
 * `prenormed`): column-parallel QKV / gate-up, row-parallel o / down.
 */
import { GraphBuilder } from '../../../graph/onnx';
import { addNorm, attnKernel, emitAttention, emitMlp } from '../../../graph/layers';
import type { AttnShape, AttnWeights, MlpShape, MlpWeights, RopeTables } from '../../../graph/layers';

export interface Built {
  bytes: Uint8Array;
  weightBytes: number;
}

/** (x[, delta]) → normed, resid (B,S,H). */
export function buildNorm(name: string, gamma: Float32Array, hidden: number, eps: number, first: boolean): Built {
  const g = new GraphBuilder(name);
  const x = g.input('x', 'float32', ['batch', 'seq', hidden]);
  const delta = first ? null : g.input('delta', 'float32', ['batch', 'seq', hidden]);
  const [normed, resid] = addNorm(g, 'norm', { x, delta }, gamma, hidden, eps);
  g.node('Identity', [normed], ['normed']);
  g.node('Identity', [resid], ['resid']);
  g.output('normed', 'float32', ['batch', 'seq', hidden]);
  g.output('resid', 'float32', ['batch', 'seq', hidden]);
  return { bytes: g.toBytes(), weightBytes: g.weightBytes };
}

/** Attention body: normed (B,S,H), past K/V and the kernel's step inputs → out (B,S,H), present K/V. */
export function buildAttnBody(name: string, w: AttnWeights, s: AttnShape, rope: RopeTables): Built {
  const g = new GraphBuilder(name);
  const H = s.hidden;
  const normed = g.input('normed', 'float32', ['batch', 'seq', H]);
  const pastK = g.input('past_k', 'float32', ['batch', s.kvHeads, 'past', s.headDim]);
  const pastV = g.input('past_v', 'float32', ['batch', s.kvHeads, 'past', s.headDim]);
  const kernel = attnKernel(s.headDim);
  const io = {
    x: normed,
    delta: null,
    pastK,
    pastV,
    seqlensK: kernel === 'gqa' ? g.input('seqlens_k', 'int32', ['batch']) : '',
    totalLen: kernel === 'gqa' ? g.input('total_len', 'int32', []) : '',
    positions: kernel === 'ops' ? g.input('positions', 'int64', ['batch', 'seq']) : '',
    mask: kernel === 'ops' ? g.input('mask', 'float32', ['seq', 'total']) : '',
    cos: g.init('rope.cos', rope.cos, [rope.maxSeq, rope.cos.length / rope.maxSeq]),
    sin: g.init('rope.sin', rope.sin, [rope.maxSeq, rope.sin.length / rope.maxSeq]),
  };
  const r = emitAttention(g, 'attn', w, s, io, normed);
  g.node('Identity', [r.out], ['out']);
  g.node('Identity', [r.presentK], ['present_k']);
  g.node('Identity', [r.presentV], ['present_v']);
  g.output('out', 'float32', ['batch', 'seq', H]);
  g.output('present_k', 'float32', ['batch', s.kvHeads, 'total', s.headDim]);
  g.output('present_v', 'float32', ['batch', s.kvHeads, 'total', s.headDim]);
  return { bytes: g.toBytes(), weightBytes: g.weightBytes };
}

/** MLP body: normed (B,S,H) → out (B,S,H). */
export function buildMlpBody(name: string, w: MlpWeights, s: MlpShape): Built {
  const g = new GraphBuilder(name);
  const normed = g.input('normed', 'float32', ['batch', 'seq', s.hidden]);
  const r = emitMlp(g, 'mlp', w, s, { x: normed, delta: null }, normed);
  g.node('Identity', [r.out], ['out']);
  g.output('out', 'float32', ['batch', 'seq', s.hidden]);
  return { bytes: g.toBytes(), weightBytes: g.weightBytes };
}
