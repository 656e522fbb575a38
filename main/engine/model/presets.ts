/**
 * The built-in synthetic models (DESIGN.md "Model and execution"): their
 * shapes, seeds and descriptions are data, in resources/presets.json; this
 * file turns them into configs and checks them once. synth.ts writes them to
 * disk in Hugging Face layout; nothing here touches the disk.
 *
 * All presets share the ChatML byte-level tokenizer of bpe.ts (specials at
 * ids 0..3), RoPE theta 10000, RMSNorm eps 1e-5, 4096 positions and float32
 * weights, and all are untied (lm_head separate from the embedding) so that
 * vocab-parallel LM heads are exercised on a real separate tensor.
 */
import { BOS_ID, EOS_ID, IM_END_ID } from './bpe';
import { ModelError } from './errors';
import type { ModelConfig } from './types';
import presetData from '../../../resources/presets.json';

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

interface PresetEntry {
  id: string;
  name: string;
  description: string;
  seed: number;
  shape: Shape;
}

/** The presets of resources/presets.json, checked against PRESET_IDS (a mismatch is a packaging error, not a user's). */
function loadPresets(entries: PresetEntry[]): Record<PresetId, PresetSpec> {
  const ids = entries.map((e) => e.id);
  if (ids.join() !== PRESET_IDS.join()) throw new Error(`resources/presets.json lists ${ids.join(', ')}; the engine knows ${PRESET_IDS.join(', ')}`);
  return Object.fromEntries(
    entries.map((e) => {
      if (!Number.isInteger(e.seed) || e.shape.hidden % e.shape.heads !== 0) throw new Error(`resources/presets.json: preset ${e.id} has a bad seed or shape`);
      return [e.id, { id: e.id as PresetId, name: e.name, description: e.description, seed: e.seed, config: synthConfig(e.shape) }];
    }),
  ) as Record<PresetId, PresetSpec>;
}

const PRESETS = loadPresets(presetData.presets);

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
