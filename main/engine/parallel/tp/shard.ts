/**
 * Tensor parallelism is a matter of which slice each rank reads (nano-vllm's
 * Column/RowParallelLinear), straight from the model files:
 *   column-parallel  q/k/v, gate/up: rows of the HF (out, in) weight
 *   row-parallel     o_proj, down:   columns of the HF weight
 *   vocab-parallel   embedding and LM head: rows [v0, v1) of (V, H)
 * k/v read the rows of the rank's KV slots (tp/layout.ts: a KV head twice
 * where an uneven head split needs it). Everything is transposed once, here,
 * to the (in, out) layout MatMul wants.
 * With tp = 1 the slices are whole. The only communication TP then needs is
 * the all-reduce after each row-parallel output (tp/collectives.ts).
 */
import type { ModelConfig } from '../../model/types';
import type { WeightReader } from '../../model/weights';
import type { Piece } from '../../graph/segments';
import { concat, transpose, transposeConcat } from '../../graph/transpose';
import type { Range } from '../split';
import type { ShardLayout } from './layout';

const scaleRange = (r: Range, k: number): Range => [r[0] * k, r[1] * k];

/** The vocab-parallel embedding: this rank's rows of the table (all of them with tp = 1). */
export function readEmbedding(c: ModelConfig, w: WeightReader, L: ShardLayout, tpOn: boolean): Extract<Piece, { kind: 'embed' }> {
  const rows = tpOn ? L.vocab : ([0, c.vocabSize] as Range);
  return { kind: 'embed', table: w.readF32('model.embed_tokens.weight', { rows }), rows: rows[1] - rows[0], hidden: c.hidden, shard: tpOn ? rows : null };
}

/** The rows of a k/v projection (weight or bias) for each KV slot, in slot order: runs of consecutive heads read at once, a repeated head read again. */
function kvRows(w: WeightReader, name: string, slots: number[], D: number): Float32Array {
  const parts: Float32Array[] = [];
  for (let i = 0; i < slots.length; ) {
    let j = i + 1;
    while (j < slots.length && slots[j] === slots[j - 1] + 1) j++;
    parts.push(w.readF32(name, { rows: [slots[i] * D, (slots[j - 1] + 1) * D] }));
    i = j;
  }
  return parts.length === 1 ? parts[0] : concat(parts);
}

/** Attention of layer l: column-parallel q/k/v of this rank's heads, row-parallel o_proj. `first`: the stage's first sublayer. */
export function readAttention(c: ModelConfig, w: WeightReader, l: number, L: ShardLayout, first: boolean): Extract<Piece, { kind: 'attn' }> {
  const p = `model.layers.${l}`;
  const D = c.headDim;
  const H = c.hidden;
  const q = scaleRange(L.heads, D);
  const kv = (name: string) => kvRows(w, name, L.kvSlots, D);
  const qkvOut = [w.readF32(`${p}.self_attn.q_proj.weight`, { rows: q }), kv(`${p}.self_attn.k_proj.weight`), kv(`${p}.self_attn.v_proj.weight`)];
  const bqkv = c.qkvBias ? concat([w.readF32(`${p}.self_attn.q_proj.bias`, { rows: q }), kv(`${p}.self_attn.k_proj.bias`), kv(`${p}.self_attn.v_proj.bias`)]) : null;
  return {
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
    s: { hidden: H, heads: L.heads[1] - L.heads[0], kvHeads: L.kvSlots.length, headDim: D, eps: c.rmsEps, first },
  };
}

/** The SwiGLU MLP of layer l: column-parallel gate/up, row-parallel down. */
export function readMlp(c: ModelConfig, w: WeightReader, l: number, L: ShardLayout): Extract<Piece, { kind: 'mlp' }> {
  const p = `model.layers.${l}`;
  const H = c.hidden;
  const f = L.ffn;
  return {
    kind: 'mlp',
    layer: l,
    w: {
      postNorm: w.readF32(`${p}.post_attention_layernorm.weight`),
      wgu: transposeConcat([w.readF32(`${p}.mlp.gate_proj.weight`, { rows: f }), w.readF32(`${p}.mlp.up_proj.weight`, { rows: f })], H),
      wdown: transpose(w.readF32(`${p}.mlp.down_proj.weight`, { cols: f }), H, f[1] - f[0]),
    },
    s: { hidden: H, ffn: f[1] - f[0], eps: c.rmsEps },
  };
}

/** The final norm and the vocab-parallel LM head (tied to the embedding when the model says so or has no lm_head). */
export function readHead(c: ModelConfig, w: WeightReader, L: ShardLayout, tpOn: boolean): Extract<Piece, { kind: 'head' }> {
  const rows = tpOn ? L.vocab : ([0, c.vocabSize] as Range);
  const name = c.tieEmbeddings || !w.has('lm_head.weight') ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return {
    kind: 'head',
    w: { finalNorm: w.readF32('model.norm.weight'), lmHead: transpose(w.readF32(name, { rows }), rows[1] - rows[0], c.hidden) },
    hidden: c.hidden,
    vocab: rows[1] - rows[0],
    eps: c.rmsEps,
  };
}
