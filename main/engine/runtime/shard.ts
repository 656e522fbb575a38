/**
 * Loads one rank's shard of the weights straight from the model files and
 * turns it into graph pieces. Megatron tensor parallelism is a matter of which
 * slice each rank reads (nano-vllm's Column/RowParallelLinear):
 *   column-parallel  q/k/v, gate/up: rows of the HF (out, in) weight
 *   row-parallel     o_proj, down:   columns of the HF weight
 *   vocab-parallel   embedding and LM head: rows [v0, v1) of (V, H)
 * Everything is transposed once, here, to the (in, out) layout MatMul wants.
 */
import type { ModelConfig } from '../model/types';
import type { Piece } from '../graph/segments';
import { splitEven, kvHeadRange } from '../parallel/split';
import type { Range } from '../parallel/split';
import { loadMoePiece } from '../parallel/expert';

/** What a rank holds: a half-open layer range [start, end), ends of the model, a TP coordinate. */
export interface ShardPlan {
  layers: Range;
  embed: boolean;
  head: boolean;
  tp: { rank: number; size: number };
  /** sequence parallelism: this rank's index in its sp group, and how the group splits attention */
  sp?: { rank: number; size: number; impl: 'ulysses' | 'ring' | 'usp' | 'megatron'; ulysses: number; chunking: 'contiguous' | 'zigzag' };
  /** expert parallelism: this rank's index in its ep group (which expert shard it holds) */
  ep?: { rank: number; size: number; tpTokens?: 'share' | 'allreduce' };
}

/** The read side of a model's weights (WeightStore implements it). */
export interface WeightReader {
  has(name: string): boolean;
  readF32(name: string, slice?: { rows?: Range; cols?: Range }): Float32Array;
}

export interface ShardLayout {
  heads: Range;
  kvHeads: Range;
  ffn: Range;
  vocab: Range;
}

/** Which heads / FFN columns / vocab rows a TP rank owns. */
export function shardLayout(c: ModelConfig, tp: { rank: number; size: number }): ShardLayout {
  if (c.heads % tp.size !== 0) {
    throw new Error(`tp=${tp.size} does not divide ${c.heads} attention heads`);
  }
  const heads = splitEven(c.heads, tp.size, tp.rank);
  const kvHeads = kvHeadRange(c.heads, c.kvHeads, heads[0], heads[1]);
  const nq = heads[1] - heads[0];
  const nkv = kvHeads[1] - kvHeads[0];
  if (nq % nkv !== 0 || (c.heads / c.kvHeads) % (nq / nkv) !== 0) {
    throw new Error(`tp=${tp.size} splits ${c.heads} query heads over ${c.kvHeads} kv heads unevenly; use a tp that divides or is a multiple of ${c.kvHeads}`);
  }
  return { heads, kvHeads, ffn: splitEven(c.ffn, tp.size, tp.rank), vocab: splitEven(c.vocabSize, tp.size, tp.rank) };
}

/** Build the pieces (embedding, layers, head) this rank runs, reading only its slices. */
export function loadShardPieces(c: ModelConfig, w: WeightReader, plan: ShardPlan): Piece[] {
  const L = shardLayout(c, plan.tp);
  const D = c.headDim;
  const H = c.hidden;
  const tpOn = plan.tp.size > 1;
  if (c.qkNorm && c.qkNormScope === 'projection' && plan.tp.size > 1) {
    throw new Error(`${c.hfArchitecture}: its q/k RMSNorm spans the whole projection, so tensor parallelism would need the norm's statistics from every tp rank; use tp=1 (dp, pp, sp, ep run it)`);
  }
  const pieces: Piece[] = [];
  const embedName = 'model.embed_tokens.weight';
  if (plan.embed) {
    const rows = tpOn ? L.vocab : ([0, c.vocabSize] as Range);
    pieces.push({ kind: 'embed', table: w.readF32(embedName, { rows }), rows: rows[1] - rows[0], hidden: H, shard: tpOn ? rows : null });
  }
  for (let l = plan.layers[0]; l < plan.layers[1]; l++) {
    const p = `model.layers.${l}`;
    const q = scaleRange(L.heads, D);
    const kv = scaleRange(L.kvHeads, D);
    const nq = L.heads[1] - L.heads[0];
    const nkv = L.kvHeads[1] - L.kvHeads[0];
    const qkvOut = [w.readF32(`${p}.self_attn.q_proj.weight`, { rows: q }), w.readF32(`${p}.self_attn.k_proj.weight`, { rows: kv }), w.readF32(`${p}.self_attn.v_proj.weight`, { rows: kv })];
    const bqkv = c.qkvBias
      ? concat([w.readF32(`${p}.self_attn.q_proj.bias`, { rows: q }), w.readF32(`${p}.self_attn.k_proj.bias`, { rows: kv }), w.readF32(`${p}.self_attn.v_proj.bias`, { rows: kv })])
      : null;
    pieces.push({
      kind: 'attn',
      layer: l,
      w: {
        inputNorm: w.readF32(`${p}.input_layernorm.weight`),
        wqkv: transposeConcat(qkvOut, H),
        bqkv,
        qNorm: c.qkNorm ? w.readF32(`${p}.self_attn.q_norm.weight`) : null,
        kNorm: c.qkNorm ? w.readF32(`${p}.self_attn.k_norm.weight`) : null,
        wo: transpose(w.readF32(`${p}.self_attn.o_proj.weight`, { cols: q }), H, q[1] - q[0]),
      },
      // The first layer of a stage starts from a single residual tensor (the
      // embedding, or the previous stage's folded stream).
      s: { hidden: H, heads: nq, kvHeads: nkv, headDim: D, eps: c.rmsEps, first: l === plan.layers[0] },
    });
    if (c.moe) {
      // Router + this rank's experts (an ep shard, or tp slices of all): parallel/expert.ts.
      pieces.push(loadMoePiece(c, w, l, plan));
      continue;
    }
    const f = L.ffn;
    pieces.push({
      kind: 'mlp',
      layer: l,
      w: {
        postNorm: w.readF32(`${p}.post_attention_layernorm.weight`),
        wgu: transposeConcat([w.readF32(`${p}.mlp.gate_proj.weight`, { rows: f }), w.readF32(`${p}.mlp.up_proj.weight`, { rows: f })], H),
        wdown: transpose(w.readF32(`${p}.mlp.down_proj.weight`, { cols: f }), H, f[1] - f[0]),
      },
      s: { hidden: H, ffn: f[1] - f[0], eps: c.rmsEps },
    });
  }
  if (!plan.head) pieces.push({ kind: 'sum', hidden: H });
  if (plan.head) {
    const rows = tpOn ? L.vocab : ([0, c.vocabSize] as Range);
    const name = c.tieEmbeddings || !w.has('lm_head.weight') ? embedName : 'lm_head.weight';
    pieces.push({
      kind: 'head',
      w: { finalNorm: w.readF32('model.norm.weight'), lmHead: transpose(w.readF32(name, { rows }), rows[1] - rows[0], H) },
      hidden: H,
      vocab: rows[1] - rows[0],
      eps: c.rmsEps,
    });
  }
  return pieces;
}

const scaleRange = (r: Range, k: number): Range => [r[0] * k, r[1] * k];

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** (rows, cols) row-major → (cols, rows), blocked for cache locality. */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(rows * cols);
  transposeInto(dst, rows, 0, src, rows, cols);
  return dst;
}

/** Stack HF (out_i, in) weights along out, transposed: → (in, Σ out_i). */
function transposeConcat(parts: Float32Array[], inDim: number): Float32Array {
  const outDims = parts.map((p) => p.length / inDim);
  const total = outDims.reduce((a, b) => a + b, 0);
  const dst = new Float32Array(inDim * total);
  let off = 0;
  parts.forEach((p, i) => {
    transposeInto(dst, total, off, p, outDims[i], inDim);
    off += outDims[i];
  });
  return dst;
}

/** dst[c, colOffset + r] = src[r, c]; dst has `dstCols` columns. */
function transposeInto(dst: Float32Array, dstCols: number, colOffset: number, src: Float32Array, rows: number, cols: number): void {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) {
        const so = r * cols;
        for (let c = c0; c < c1; c++) dst[c * dstCols + colOffset + r] = src[so + c];
      }
    }
  }
}
