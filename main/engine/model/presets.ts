/**
 * The built-in synthetic models (DESIGN.md "Model and execution"): their
 * configs, seeds and descriptions. synth.ts writes them to disk in Hugging
 * Face layout; nothing here touches the disk.
 *
 * All presets share the ChatML byte-level tokenizer of bpe.ts (specials at
 * ids 0..3), RoPE theta 10000, RMSNorm eps 1e-5, 4096 positions and float32
 * weights, and all are untied (lm_head separate from the embedding) so that
 * vocab-parallel LM heads are exercised on a real separate tensor.
 */
import { BOS_ID, EOS_ID, IM_END_ID } from './bpe';
import { ModelError } from './errors';
import type { ModelConfig } from './types';

/** Bump when anything that changes the written files changes (init scales, corpus, layout). */
export const PRESET_VERSION = 1;

export const PRESET_IDS = ['synth-llama-tiny', 'synth-moe-tiny', 'synth-llama-small', 'synth-moe-small'] as const;
export type PresetId = (typeof PRESET_IDS)[number];

export interface PresetSpec {
  id: PresetId;
  name: string;
  description: string;
  /** seed of the deterministic weights */
  seed: number;
  config: ModelConfig;
}

interface Shape {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  experts?: { n: number; topK: number; ffn: number };
}

/** The common part of every preset config; `shape` fills in the sizes. */
function synthConfig(s: Shape): ModelConfig {
  const moe = s.experts ? { experts: s.experts.n, topK: s.experts.topK, expertFfn: s.experts.ffn, normTopK: true, sharedExpertFfn: 0 } : null;
  return {
    family: moe ? 'mixtral' : 'llama',
    hfArchitecture: moe ? 'MixtralForCausalLM' : 'LlamaForCausalLM',
    vocabSize: s.vocab,
    hidden: s.hidden,
    layers: s.layers,
    heads: s.heads,
    kvHeads: s.kvHeads,
    headDim: s.hidden / s.heads,
    ffn: moe ? 0 : s.ffn,
    rmsEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositions: 4096,
    tieEmbeddings: false,
    qkvBias: false,
    qkNorm: false,
    moe,
    dtype: 'float32',
    bosTokenId: BOS_ID,
    eosTokenIds: [EOS_ID, IM_END_ID],
  };
}

const PRESETS: Record<PresetId, PresetSpec> = {
  'synth-llama-tiny': {
    id: 'synth-llama-tiny',
    name: 'Synthetic Llama (tiny)',
    description: 'Llama layout, hidden 64, 4 layers, 8 heads / 4 KV heads, FFN 176, vocab 512: for tests',
    seed: 0x7a11_0001,
    config: synthConfig({ vocab: 512, hidden: 64, layers: 4, heads: 8, kvHeads: 4, ffn: 176 }),
  },
  'synth-moe-tiny': {
    id: 'synth-moe-tiny',
    name: 'Synthetic Mixtral (tiny)',
    description: 'Mixtral layout, hidden 64, 4 layers, 8 heads / 4 KV heads, 8 experts top-2 of FFN 96, vocab 512: for tests',
    seed: 0x7a11_0002,
    config: synthConfig({ vocab: 512, hidden: 64, layers: 4, heads: 8, kvHeads: 4, ffn: 0, experts: { n: 8, topK: 2, ffn: 96 } }),
  },
  'synth-llama-small': {
    id: 'synth-llama-small',
    name: 'Synthetic Llama (small, ~155M)',
    description: 'Llama layout, hidden 1024, 8 layers, 16 heads / 4 KV heads, FFN 2816, vocab 32000, untied: the benchmark shape',
    seed: 0x7a11_0003,
    config: synthConfig({ vocab: 32000, hidden: 1024, layers: 8, heads: 16, kvHeads: 4, ffn: 2816 }),
  },
  'synth-moe-small': {
    id: 'synth-moe-small',
    name: 'Synthetic Mixtral (small)',
    description: 'Mixtral layout, hidden 768, 8 layers, 12 heads / 4 KV heads, 8 experts top-2 of FFN 1024, vocab 32000',
    seed: 0x7a11_0004,
    config: synthConfig({ vocab: 32000, hidden: 768, layers: 8, heads: 12, kvHeads: 4, ffn: 0, experts: { n: 8, topK: 2, ffn: 1024 } }),
  },
};

export function isPresetId(id: string): id is PresetId {
  return (PRESET_IDS as readonly string[]).includes(id);
}

/** The spec of a preset (config deep-copied); ModelError 'unknown-preset' for anything else. */
export function presetSpec(id: string): PresetSpec {
  if (!isPresetId(id)) {
    throw new ModelError('unknown-preset', `unknown preset '${id}'; the presets are ${PRESET_IDS.join(', ')}`);
  }
  const p = PRESETS[id];
  return { ...p, config: structuredClone(p.config) };
}

export function presetConfig(id: string): ModelConfig {
  return presetSpec(id).config;
}
