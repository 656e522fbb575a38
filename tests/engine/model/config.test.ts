import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelConfig, parseHfConfig } from '../../../main/engine/model/config';
import { toHfConfig } from '../../../main/engine/model/hf-config';
import { paramCount, type ModelConfig } from '../../../main/engine/model/types';
import { modelError, tmpDir } from './helpers';

const src = { source: '/m/config.json' };

// Trimmed copies of real configs (only the fields that matter), per family.
const LLAMA31_8B = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, hidden_act: 'silu', max_position_embeddings: 131072,
  rms_norm_eps: 1e-5, rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009], attention_bias: false, mlp_bias: false,
  rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
};
const LLAMA2_7B = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008,
  num_hidden_layers: 32, num_attention_heads: 32, max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_scaling: null,
  torch_dtype: 'float16', bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: false,
};
const MISTRAL_7B = {
  architectures: ['MistralForCausalLM'], model_type: 'mistral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 32768, rms_norm_eps: 1e-5,
  rope_theta: 10000.0, sliding_window: 4096, torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: false,
};
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864,
  num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, max_position_embeddings: 32768, rms_norm_eps: 1e-6,
  rope_theta: 1000000.0, sliding_window: 32768, use_sliding_window: false, max_window_layers: 21, tie_word_embeddings: true,
  torch_dtype: 'bfloat16', bos_token_id: 151643, eos_token_id: 151643,
};
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072,
  num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 40960,
  rms_norm_eps: 1e-6, rope_theta: 1000000, rope_scaling: null, attention_bias: false, tie_word_embeddings: true,
  torch_dtype: 'bfloat16', bos_token_id: 151643, eos_token_id: 151645,
};
const MIXTRAL_8X7B = {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, num_local_experts: 8, num_experts_per_tok: 2,
  max_position_embeddings: 32768, rms_norm_eps: 1e-5, rope_theta: 1e6, torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2,
};
const QWEN15_MOE = {
  architectures: ['Qwen2MoeForCausalLM'], model_type: 'qwen2_moe', vocab_size: 151936, hidden_size: 2048, intermediate_size: 5632,
  num_hidden_layers: 24, num_attention_heads: 16, num_key_value_heads: 16, num_experts: 60, num_experts_per_tok: 4,
  moe_intermediate_size: 1408, shared_expert_intermediate_size: 5632, norm_topk_prob: false, decoder_sparse_step: 1,
  mlp_only_layers: [], max_position_embeddings: 8192, rms_norm_eps: 1e-6, torch_dtype: 'bfloat16', eos_token_id: 151643,
};
const QWEN3_30B_A3B = {
  architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', vocab_size: 151936, hidden_size: 2048, intermediate_size: 6144,
  num_hidden_layers: 48, num_attention_heads: 32, num_key_value_heads: 4, head_dim: 128, num_experts: 128, num_experts_per_tok: 8,
  moe_intermediate_size: 768, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [], max_position_embeddings: 40960,
  rms_norm_eps: 1e-6, rope_theta: 1e6, tie_word_embeddings: false, torch_dtype: 'bfloat16', bos_token_id: 151643, eos_token_id: 151645,
};
const OLMOE = {
  architectures: ['OlmoeForCausalLM'], model_type: 'olmoe', vocab_size: 50304, hidden_size: 2048, intermediate_size: 1024,
  num_hidden_layers: 16, num_attention_heads: 16, num_key_value_heads: 16, num_experts: 64, num_experts_per_tok: 8,
  norm_topk_prob: false, clip_qkv: null, max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 10000,
  torch_dtype: 'bfloat16', eos_token_id: 50279, pad_token_id: 1,
};

describe('parseHfConfig per family', () => {
  it('Llama 3.1: llama3 rope scaling, GQA, eos union with generation_config', () => {
    const c = parseHfConfig(LLAMA31_8B, { ...src, generationConfig: { bos_token_id: 128000, eos_token_id: [128001, 128008, 128009, 128010] } });
    expect(c).toMatchObject({
      family: 'llama', hfArchitecture: 'LlamaForCausalLM', hidden: 4096, heads: 32, kvHeads: 8, headDim: 128, ffn: 14336,
      ropeTheta: 500000, maxPositions: 131072, dtype: 'bfloat16', tieEmbeddings: false, qkvBias: false, qkNorm: false, moe: null,
      bosTokenId: 128000,
    });
    expect(c.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    expect(c.eosTokenIds).toEqual([128001, 128008, 128009, 128010]);
    expect(paramCount(c)).toBeGreaterThan(8.0e9);
    expect(paramCount(c)).toBeLessThan(8.1e9);
  });

  it('Llama 2: kv heads default to heads, number eos, float16, no scaling', () => {
    const c = parseHfConfig(LLAMA2_7B, src);
    expect(c).toMatchObject({ kvHeads: 32, headDim: 128, ropeTheta: 10000, ropeScaling: null, dtype: 'float16', eosTokenIds: [2], bosTokenId: 1 });
    expect(paramCount(c)).toBe(6738415616);
  });

  it('reads the legacy `type` key, linear scaling, and treats "default" as none', () => {
    expect(parseHfConfig({ ...LLAMA2_7B, rope_scaling: { type: 'linear', factor: 2 } }, src).ropeScaling).toEqual({ type: 'linear', factor: 2 });
    expect(parseHfConfig({ ...LLAMA2_7B, rope_scaling: { rope_type: 'default' } }, src).ropeScaling).toBeNull();
  });

  it('reads transformers v5 rope_parameters', () => {
    const { rope_theta: _t, rope_scaling: _s, ...rest } = LLAMA31_8B;
    const c = parseHfConfig({ ...rest, rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, src);
    expect(c.ropeTheta).toBe(500000);
    expect(c.ropeScaling?.type).toBe('llama3');
  });

  it('Mistral: sliding_window accepted and ignored', () => {
    expect(parseHfConfig(MISTRAL_7B, src)).toMatchObject({ family: 'mistral', kvHeads: 8, headDim: 128, dtype: 'bfloat16' });
  });

  it('Qwen2.5: QKV bias, tied embeddings, eos union dedups', () => {
    const c = parseHfConfig(QWEN25_05B, { ...src, generationConfig: { eos_token_id: [151645, 151643] } });
    expect(c).toMatchObject({ family: 'qwen2', qkvBias: true, tieEmbeddings: true, headDim: 64, kvHeads: 2, ropeTheta: 1e6 });
    expect(c.eosTokenIds).toEqual([151643, 151645]);
    expect(paramCount(c)).toBe(494032768);
  });

  it('Qwen3: explicit head_dim wins over hidden/heads, per-head q/k norm', () => {
    const c = parseHfConfig(QWEN3_06B, src);
    expect(c).toMatchObject({ family: 'qwen3', headDim: 128, qkNorm: true, qkNormScope: 'head', qkvBias: false, tieEmbeddings: true });
    expect(paramCount(c)).toBe(596049920);
  });

  it('Mixtral: intermediate_size is the expert size, topK renormalised', () => {
    const c = parseHfConfig(MIXTRAL_8X7B, src);
    expect(c.ffn).toBe(0);
    expect(c.moe).toEqual({ experts: 8, topK: 2, expertFfn: 14336, normTopK: true, sharedExpertFfn: 0 });
    expect(paramCount(c)).toBe(46702792704);
  });

  it('Qwen2-MoE: shared expert, norm_topk_prob false', () => {
    const c = parseHfConfig(QWEN15_MOE, src);
    expect(c).toMatchObject({ family: 'qwen2_moe', qkvBias: true, ffn: 0 });
    expect(c.moe).toEqual({ experts: 60, topK: 4, expertFfn: 1408, normTopK: false, sharedExpertFfn: 5632 });
  });

  it('Qwen3-MoE: experts, explicit head_dim, q/k norm', () => {
    const c = parseHfConfig(QWEN3_30B_A3B, src);
    expect(c).toMatchObject({ family: 'qwen3_moe', headDim: 128, qkNorm: true, qkNormScope: 'head', qkvBias: false });
    expect(c.moe).toEqual({ experts: 128, topK: 8, expertFfn: 768, normTopK: true, sharedExpertFfn: 0 });
    expect(paramCount(c) / 1e9).toBeCloseTo(30.5, 1);
  });

  it('OLMoE: expert size from intermediate_size, q/k norm over the whole projection', () => {
    const c = parseHfConfig(OLMOE, src);
    expect(c).toMatchObject({ family: 'olmoe', qkNorm: true, qkNormScope: 'projection', headDim: 128, bosTokenId: null, eosTokenIds: [50279] });
    expect(c.moe).toEqual({ experts: 64, topK: 8, expertFfn: 1024, normTopK: false, sharedExpertFfn: 0 });
    expect(paramCount(c) / 1e9).toBeCloseTo(6.92, 1);
  });

  it('falls back to model_type when architectures is absent; dtype defaults to float32', () => {
    const { architectures: _a, torch_dtype: _d, ...rest } = LLAMA2_7B;
    const c = parseHfConfig(rest, src);
    expect(c.hfArchitecture).toBe('LlamaForCausalLM');
    expect(c.dtype).toBe('float32');
    expect(parseHfConfig({ ...rest, dtype: 'bfloat16' }, src).dtype).toBe('bfloat16');
  });

  it('toHfConfig writes real HF fields that parse back to the same config, for every family', () => {
    for (const raw of [LLAMA31_8B, LLAMA2_7B, MISTRAL_7B, QWEN25_05B, QWEN3_06B, MIXTRAL_8X7B, QWEN15_MOE, QWEN3_30B_A3B, OLMOE]) {
      const c: ModelConfig = parseHfConfig(raw, src);
      expect(parseHfConfig(toHfConfig(c), src)).toEqual(c);
    }
  });
});

describe('parseHfConfig errors name the file and the field', () => {
  it('unknown architecture', async () => {
    const e = await modelError(() => parseHfConfig({ ...LLAMA2_7B, architectures: ['GPT2LMHeadModel'] }, src), 'unknown-arch');
    expect(e.message).toContain('/m/config.json');
    expect(e.message).toContain('GPT2LMHeadModel');
    expect(e.message).toContain('LlamaForCausalLM');
    const e2 = await modelError(() => parseHfConfig({ model_type: 'gpt2', hidden_size: 8 }, src), 'unknown-arch');
    expect(e2.message).toContain('gpt2');
  });

  it.each([
    ['hidden_size', undefined, 'is missing'],
    ['hidden_size', -4, 'positive integer'],
    ['num_attention_heads', 0, 'positive integer'],
    ['vocab_size', 'many', 'positive integer'],
    ['num_hidden_layers', 2.5, 'positive integer'],
    ['intermediate_size', undefined, 'is missing'],
    ['rms_norm_eps', -1, 'positive number'],
    ['torch_dtype', 'int8', 'float32, float16 or bfloat16'],
    ['tie_word_embeddings', 'yes', 'true or false'],
    ['eos_token_id', 'eos', 'token id'],
  ])('%s = %j', async (field, value, text) => {
    const cfg: Record<string, unknown> = { ...LLAMA2_7B, [field]: value };
    if (value === undefined) delete cfg[field];
    const e = await modelError(() => parseHfConfig(cfg, src), 'config-invalid');
    expect(e.message).toContain(`'${field}'`);
    expect(e.message).toContain(text);
    expect(e.message).toContain('/m/config.json');
  });

  it('hidden not divisible by heads when head_dim is derived', async () => {
    const e = await modelError(() => parseHfConfig({ ...LLAMA2_7B, hidden_size: 4000, num_attention_heads: 48 }, src), 'config-invalid');
    expect(e.message).toMatch(/hidden_size.*4000.*48/);
    // an explicit head_dim makes it fine
    expect(parseHfConfig({ ...LLAMA2_7B, hidden_size: 4000, num_attention_heads: 48, head_dim: 64 }, src).headDim).toBe(64);
  });

  it('kv heads must divide heads; top-k must not exceed experts', async () => {
    await modelError(() => parseHfConfig({ ...LLAMA2_7B, num_key_value_heads: 5 }, src), 'config-invalid');
    const e = await modelError(() => parseHfConfig({ ...MIXTRAL_8X7B, num_experts_per_tok: 9 }, src), 'config-invalid');
    expect(e.message).toContain('num_experts_per_tok');
  });

  it('rejects what it cannot compute', async () => {
    await modelError(() => parseHfConfig({ ...LLAMA2_7B, rope_scaling: { rope_type: 'yarn', factor: 4 } }, src), 'config-unsupported');
    await modelError(() => parseHfConfig({ ...LLAMA2_7B, hidden_act: 'gelu' }, src), 'config-unsupported');
    await modelError(() => parseHfConfig({ ...LLAMA2_7B, attention_bias: true }, src), 'config-unsupported');
    await modelError(() => parseHfConfig({ ...QWEN15_MOE, mlp_only_layers: [0, 1] }, src), 'config-unsupported');
    await modelError(() => parseHfConfig({ ...OLMOE, clip_qkv: 8 }, src), 'config-unsupported');
    const e = await modelError(() => parseHfConfig({ ...LLAMA31_8B, rope_scaling: { rope_type: 'llama3', factor: 8 } }, src), 'config-invalid');
    expect(e.message).toContain('low_freq_factor');
  });

  it('not an object', async () => {
    await modelError(() => parseHfConfig([1, 2], src), 'config-invalid');
  });
});

describe('loadModelConfig', () => {
  it('reads config.json and generation_config.json', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(LLAMA31_8B));
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 7 }));
    expect(loadModelConfig(dir).eosTokenIds).toEqual([128001, 128008, 128009, 7]);
  });

  it('missing folder / missing config.json / garbled JSON', async () => {
    const dir = tmpDir();
    let e = await modelError(() => loadModelConfig(path.join(dir, 'nope')), 'config-missing');
    expect(e.message).toContain(path.join(dir, 'nope'));
    e = await modelError(() => loadModelConfig(dir), 'config-missing');
    expect(e.message).toContain(path.join(dir, 'config.json'));
    fs.writeFileSync(path.join(dir, 'config.json'), '{"hidden_size": 64,');
    e = await modelError(() => loadModelConfig(dir), 'config-invalid');
    expect(e.message).toContain(path.join(dir, 'config.json'));
    expect(e.message).toContain('not valid JSON');
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(LLAMA2_7B));
    fs.writeFileSync(path.join(dir, 'generation_config.json'), 'eos');
    e = await modelError(() => loadModelConfig(dir), 'config-invalid');
    expect(e.message).toContain('generation_config.json');
  });
});
