/**
 * Emitters for the transformer's pieces, written once and used both by the
 * per-segment graphs a rank runs and by the monolithic one-graph reference.
 *
 * Shapes: B batch, S new tokens, P past tokens, H hidden, Hq = local query
 * heads × D, Hkv = local kv heads × D, F local FFN width, V local vocab.
 * Weights arrive already sliced for this rank's shard and transposed to
 * (in, out), so every projection is a plain MatMul(x, W).
 *
 * The residual stream is carried as two tensors (x, delta): each sublayer
 * starts with SkipSimplifiedLayerNormalization(x, delta) which both adds the
 * previous sublayer's output into the residual and normalises it — so the
 * only thing that crosses a collective is a sublayer's output `delta`.
 */
import type { GraphBuilder } from './onnx';

const MS = 'com.microsoft';

export interface AttnWeights {
  inputNorm: Float32Array; // (H)
  wqkv: Float32Array; // (H, Hq + 2·Hkv)   columns: [q | k | v]
  bqkv: Float32Array | null; // (Hq + 2·Hkv)  Qwen2 bias
  qNorm: Float32Array | null; // (D)  Qwen3 per-head RMSNorm
  kNorm: Float32Array | null; // (D)
  wo: Float32Array; // (Hq, H)
}

export interface AttnShape {
  hidden: number;
  heads: number; // local query heads
  kvHeads: number; // local kv heads
  headDim: number;
  eps: number;
  /** first sublayer of the shard's stream: no `delta` to add yet */
  first: boolean;
}

export interface MlpWeights {
  postNorm: Float32Array; // (H)
  wgu: Float32Array; // (H, 2F)   columns: [gate | up]
  wdown: Float32Array; // (F, H)
}

export interface MlpShape {
  hidden: number;
  ffn: number; // local width
  eps: number;
}

export interface HeadWeights {
  finalNorm: Float32Array; // (H)
  lmHead: Float32Array; // (H, V)
}

/** RoPE tables shared by all layers, (maxSeq, D/2). */
export interface RopeTables {
  cos: Float32Array;
  sin: Float32Array;
  maxSeq: number;
}

export interface StreamIn {
  x: string; // (B,S,H) residual before this sublayer
  delta: string | null; // (B,S,H) previous sublayer's output, null when `first`
}

/** Residual add + RMSNorm. Returns [normed, newResidual]. */
export function addNorm(g: GraphBuilder, p: string, s: StreamIn, gamma: Float32Array, hidden: number, eps: number): [string, string] {
  const w = g.init(`${p}.norm`, gamma, [hidden]);
  if (s.delta === null) {
    const normed = g.op('SimplifiedLayerNormalization', [s.x, w], { axis: -1, epsilon: { float: eps } });
    return [normed, s.x];
  }
  const [normed, , , sum] = g.node('SkipSimplifiedLayerNormalization', [s.x, s.delta, w], [g.fresh('normed'), '', '', g.fresh('resid')], { epsilon: { float: eps } }, MS);
  return [normed, sum];
}

/** Per-head RMSNorm on (B,S,N·D): reshape to (B,S,N,D), normalise the last axis, reshape back. */
export function headNorm(g: GraphBuilder, name: string, t: string, gamma: Float32Array, heads: number, d: number, eps: number): string {
  const w = g.init(name, gamma, [d]);
  const r = g.op('Reshape', [t, g.ints([0, 0, heads, d])]);
  const n = g.op('SimplifiedLayerNormalization', [r, w], { axis: -1, epsilon: { float: eps } });
  return g.op('Reshape', [n, g.ints([0, 0, heads * d])]);
}

/**
 * q/k RMSNorm before RoPE: a (D) weight normalises each head (Qwen3); a weight
 * as long as the projection normalises all of it at once (OLMoE) — which needs
 * every head of the projection on this rank (rank/load-shard.ts refuses it under TP).
 */
export function qkNorm(g: GraphBuilder, name: string, t: string, gamma: Float32Array, heads: number, d: number, eps: number): string {
  if (gamma.length === d) return headNorm(g, name, t, gamma, heads, d, eps);
  if (gamma.length !== heads * d) throw new Error(`${name}: norm weight of ${gamma.length} values fits neither a head (${d}) nor the projection (${heads * d})`);
  return g.op('SimplifiedLayerNormalization', [t, g.init(name, gamma, [heads * d])], { axis: -1, epsilon: { float: eps } });
}

/**
 * Which attention kernel a layer uses. onnxruntime's CPU GroupQueryAttention
 * (fused RoPE + KV cache) needs head_dim % 16 == 0 — true of real models
 * (64, 128) but not of the tiny presets (head_dim 8) — so those fall back to
 * a portable composition of standard ops that computes the same function.
 */
export type AttnKernel = 'gqa' | 'ops';

export function attnKernel(headDim: number): AttnKernel {
  return headDim % 16 === 0 ? 'gqa' : 'ops';
}

export interface AttnIo extends StreamIn {
  pastK: string; // (B, kv, P, D)
  pastV: string;
  /** gqa: (B) int32 total length − 1;  ops: unused */
  seqlensK: string;
  /** gqa: () int32 total length;  ops: unused */
  totalLen: string;
  /** ops: (B,S) int64 absolute positions */
  positions: string;
  /** ops: (S, P+S) float additive causal mask (0 / −inf) */
  mask: string;
  /** ops, optional: (B,1,S,P+S) additive per-row mask hiding the padding of shorter rows in a ragged batch (continuous batching) */
  rowMask?: string;
  cos: string; // (maxSeq, D/2)
  sin: string;
}

/**
 * Self-attention sublayer: addNorm → QKV projection → attention with RoPE and
 * KV cache → o_proj. For TP the output is a partial sum the caller all-reduces.
 */
export function emitAttention(g: GraphBuilder, p: string, w: AttnWeights, s: AttnShape, io: AttnIo, prenormed?: string) {
  // Megatron-SP normalises its sequence shard in a graph of its own and passes the gathered result in.
  const [normed, resid] = prenormed ? [prenormed, ''] : addNorm(g, `${p}.input`, io, w.inputNorm, s.hidden, s.eps);
  const qd = s.heads * s.headDim;
  const kvd = s.kvHeads * s.headDim;
  let qkv = g.op('MatMul', [normed, g.init(`${p}.wqkv`, w.wqkv, [s.hidden, qd + 2 * kvd])]);
  if (w.bqkv) qkv = g.op('Add', [qkv, g.init(`${p}.bqkv`, w.bqkv, [qd + 2 * kvd])]);
  let [q, k, v] = g.node('Split', [qkv, g.ints([qd, kvd, kvd])], 3, { axis: -1 });
  if (w.qNorm && w.kNorm) {
    q = qkNorm(g, `${p}.qnorm`, q, w.qNorm, s.heads, s.headDim, s.eps);
    k = qkNorm(g, `${p}.knorm`, k, w.kNorm, s.kvHeads, s.headDim, s.eps);
  }
  const r = attnKernel(s.headDim) === 'gqa' ? gqaAttention(g, s, q, k, v, io) : opsAttention(g, s, q, k, v, io);
  const out = g.op('MatMul', [r.attn, g.init(`${p}.wo`, w.wo, [qd, s.hidden])]);
  return { x: resid, out, presentK: r.presentK, presentV: r.presentV };
}

/** onnxruntime's fused GroupQueryAttention: RoPE (rotate-half), causal mask, cache append, GQA. */
function gqaAttention(g: GraphBuilder, s: AttnShape, q: string, k: string, v: string, io: AttnIo) {
  const [attn, presentK, presentV] = g.node(
    'GroupQueryAttention',
    [q, k, v, io.pastK, io.pastV, io.seqlensK, io.totalLen, io.cos, io.sin],
    3,
    { num_heads: s.heads, kv_num_heads: s.kvHeads, do_rotary: 1, rotary_interleaved: 0, scale: { float: 1 / Math.sqrt(s.headDim) } },
    MS,
  );
  return { attn, presentK, presentV };
}

/**
 * The same attention from standard ops. Query heads are grouped under their
 * kv head (HF repeat_kv: kv head j serves query heads j·G … j·G+G−1), so
 * (B,N,S,D) → (B,kv,G·S,D) lets one batched MatMul per kv head do GQA
 * without materialising repeated K/V.
 */
function opsAttention(g: GraphBuilder, s: AttnShape, q: string, k: string, v: string, io: AttnIo) {
  const { heads: N, kvHeads: KV, headDim: D } = s;
  const G = N / KV;
  const rope = (t: string, n: number) =>
    g.op('RotaryEmbedding', [t, io.positions, io.cos, io.sin], { interleaved: 0, num_heads: n }, MS);
  const toBnsd = (t: string, n: number) => g.op('Transpose', [g.op('Reshape', [t, g.ints([0, 0, n, D])])], { perm: [0, 2, 1, 3] });
  const qr = toBnsd(rope(q, N), N); // (B,N,S,D)
  const kr = toBnsd(rope(k, KV), KV); // (B,KV,S,D)
  const vr = toBnsd(v, KV);
  const presentK = g.op('Concat', [io.pastK, kr], { axis: 2 }); // (B,KV,T,D)
  const presentV = g.op('Concat', [io.pastV, vr], { axis: 2 });
  const scale = g.init(g.fresh('scale'), Float32Array.from([1 / Math.sqrt(D)]), []);
  const qg = g.op('Reshape', [g.op('Mul', [qr, scale]), g.ints([0, KV, -1, D])]); // (B,KV,G·S,D)
  const kt = g.op('Transpose', [presentK], { perm: [0, 1, 3, 2] }); // (B,KV,D,T)
  const scores = g.op('MatMul', [qg, kt]); // (B,KV,G·S,T): row g·S+i is query i of group member g
  const mask = G === 1 ? io.mask : g.op('Tile', [io.mask, g.ints([G, 1])]); // (G·S,T)
  let masked = g.op('Add', [scores, mask]);
  // Ragged batch: each row's own padding, (B,1,S,T) tiled over the group → (B,1,G·S,T), broadcast over kv heads.
  if (io.rowMask) masked = g.op('Add', [masked, G === 1 ? io.rowMask : g.op('Tile', [io.rowMask, g.ints([1, 1, G, 1])])]);
  const probs = g.op('Softmax', [masked], { axis: -1 });
  const ctx = g.op('MatMul', [probs, presentV]); // (B,KV,G·S,D)
  const bnsd = g.op('Reshape', [ctx, g.ints([0, N, -1, D])]); // (B,N,S,D)
  const attn = g.op('Reshape', [g.op('Transpose', [bnsd], { perm: [0, 2, 1, 3] }), g.ints([0, 0, N * D])]);
  return { attn, presentK, presentV };
}

/** SwiGLU MLP sublayer: addNorm → [gate|up] projection → silu(gate)·up → down_proj (partial sum under TP). */
export function emitMlp(g: GraphBuilder, p: string, w: MlpWeights, s: MlpShape, io: StreamIn, prenormed?: string) {
  const [normed, resid] = prenormed ? [prenormed, ''] : addNorm(g, `${p}.post`, io, w.postNorm, s.hidden, s.eps);
  const gu = g.op('MatMul', [normed, g.init(`${p}.wgu`, w.wgu, [s.hidden, 2 * s.ffn])]);
  const [gate, up] = g.node('Split', [gu, g.ints([s.ffn, s.ffn])], 2, { axis: -1 });
  const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
  const act = g.op('Mul', [silu, up]);
  const out = g.op('MatMul', [act, g.init(`${p}.wdown`, w.wdown, [s.ffn, s.hidden])]);
  return { x: resid, out };
}

/**
 * Token embedding (B,S) int64 → (B,S,H). With a vocab shard [v0, v1) (vocab-
 * parallel embedding) ids outside the shard give zero rows, so the all-reduce
 * over the shards restores the full lookup.
 */
export function emitEmbedding(g: GraphBuilder, p: string, table: Float32Array, rows: number, hidden: number, ids: string, shard: [number, number] | null): string {
  const t = g.init(`${p}.table`, table, [rows, hidden]);
  if (!shard) return g.op('Gather', [t, ids], { axis: 0 });
  const [v0, v1] = shard;
  const lo = g.init(g.fresh('v0'), BigInt64Array.from([BigInt(v0)]), []);
  const hi = g.init(g.fresh('v1'), BigInt64Array.from([BigInt(v1)]), []);
  const inShard = g.op('And', [g.op('GreaterOrEqual', [ids, lo]), g.op('Less', [ids, hi])]);
  const local = g.op('Where', [inShard, g.op('Sub', [ids, lo]), g.init(g.fresh('zero'), BigInt64Array.from([0n]), [])]);
  const rowsOut = g.op('Gather', [t, local], { axis: 0 });
  const mask = g.op('Unsqueeze', [g.op('Cast', [inShard], { to: 1 }), g.ints([-1])]);
  return g.op('Mul', [rowsOut, mask]);
}

/**
 * Final norm + LM head on the LAST position only: (B,S,H) → (B,V).
 * Only the last position's logits are ever needed to pick the next token.
 */
export function emitHead(g: GraphBuilder, p: string, w: HeadWeights, hidden: number, vocab: number, eps: number, io: StreamIn): string {
  const last = (t: string) => g.op('Slice', [t, g.ints([-1]), g.ints([2 ** 53 - 1]), g.ints([1])]);
  const s: StreamIn = { x: last(io.x), delta: io.delta === null ? null : last(io.delta) };
  const [normed] = addNorm(g, `${p}.final`, s, w.finalNorm, hidden, eps);
  const logits = g.op('MatMul', [normed, g.init(`${p}.lm_head`, w.lmHead, [hidden, vocab])]);
  return g.op('Squeeze', [logits, g.ints([1])]);
}
