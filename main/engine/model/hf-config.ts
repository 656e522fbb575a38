/**
 * The inverse of config.ts: a ModelConfig as the config.json Hugging Face
 * writes (real field names, per family), so a synthetic or imported model
 * folder reads back to the same config with parseHfConfig.
 */
import { ARCHITECTURE_OF } from './config';
import type { ModelConfig } from './types';

const HF_DTYPE = { float32: 'float32', float16: 'float16', bfloat16: 'bfloat16' } as const;

function hfRopeScaling(c: ModelConfig): Record<string, unknown> | null {
  const r = c.ropeScaling;
  if (!r) return null;
  if (r.type === 'linear') return { rope_type: 'linear', factor: r.factor };
  return {
    rope_type: 'llama3', factor: r.factor, low_freq_factor: r.lowFreqFactor,
    high_freq_factor: r.highFreqFactor, original_max_position_embeddings: r.originalMaxPositions,
  };
}

/** The family-specific MoE fields, with HF's names for each family. */
function hfMoeFields(c: ModelConfig): Record<string, unknown> {
  const m = c.moe;
  if (!m) return { intermediate_size: c.ffn };
  switch (c.family) {
    case 'mixtral':
      return { intermediate_size: m.expertFfn, num_local_experts: m.experts, num_experts_per_tok: m.topK, router_aux_loss_coef: 0.02, sliding_window: null };
    case 'olmoe':
      return { intermediate_size: m.expertFfn, num_experts: m.experts, num_experts_per_tok: m.topK, norm_topk_prob: m.normTopK, clip_qkv: null };
    default:
      return {
        intermediate_size: c.ffn || m.expertFfn, moe_intermediate_size: m.expertFfn, num_experts: m.experts,
        num_experts_per_tok: m.topK, norm_topk_prob: m.normTopK, decoder_sparse_step: 1, mlp_only_layers: [],
        ...(c.family === 'qwen2_moe' ? { shared_expert_intermediate_size: m.sharedExpertFfn } : {}),
      };
  }
}

/** A config.json that `parseHfConfig` reads back to `c` (real HF field names). */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  return {
    architectures: [c.hfArchitecture || ARCHITECTURE_OF[c.family]],
    model_type: c.family,
    vocab_size: c.vocabSize,
    hidden_size: c.hidden,
    ...hfMoeFields(c),
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    head_dim: c.headDim,
    hidden_act: 'silu',
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsEps,
    rope_theta: c.ropeTheta,
    rope_scaling: hfRopeScaling(c),
    tie_word_embeddings: c.tieEmbeddings,
    attention_bias: c.qkvBias, // only Qwen2 families have q/k/v bias; they ignore this field
    attention_dropout: 0,
    initializer_range: 0.02,
    use_cache: true,
    torch_dtype: HF_DTYPE[c.dtype],
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
  };
}
