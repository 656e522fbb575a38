/**
 * Hugging Face `config.json` (+ `generation_config.json`) → `ModelConfig`.
 *
 * The only place that knows HF field names and per-family defaults. Every
 * field is checked; anything ParaLab would silently compute wrong (other
 * activations, biases on o_proj, unsupported RoPE scaling, partly-dense MoE
 * stacks) is rejected with a ModelError that names the file and the field.
 *
 * Accepted on purpose and ignored: Mistral's `sliding_window` (exact as long
 * as a sequence is not longer than the window, which ParaLab's workloads are
 * not), dropout / initializer / cache fields.
 *
 * Longer than most files (~320 lines) on purpose: it is one parser, read top
 * to bottom — family tables, the parts of a config, then parseHfConfig —
 * and the field readers live apart in config-fields.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelError, errorText, oneLine } from './errors';
import type { ArchFamily, MoeConfig, ModelConfig, RopeScaling, WeightDtype } from './types';
import { bool, invalid, isObject, nonNegInt, posInt, posNumber, show, tokenIds, unsupported } from './config-fields';
import type { Json } from './config-fields';


export interface ParseConfigOptions {
  /** file name or label used in error messages, e.g. "/models/x/config.json" */
  source: string;
  /** parsed generation_config.json, if the folder has one */
  generationConfig?: unknown;
}

/** `architectures[0]` → family. */
const BY_ARCHITECTURE: Record<string, ArchFamily> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  MixtralForCausalLM: 'mixtral',
  Qwen2MoeForCausalLM: 'qwen2_moe',
  Qwen3MoeForCausalLM: 'qwen3_moe',
  OlmoeForCausalLM: 'olmoe',
};

/** `model_type` → family (used when `architectures` is absent). */
const BY_MODEL_TYPE: Record<string, ArchFamily> = {
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  mixtral: 'mixtral',
  qwen2_moe: 'qwen2_moe',
  qwen3_moe: 'qwen3_moe',
  olmoe: 'olmoe',
};

/** The class name written back for a family when config.json has no `architectures`. */
export const ARCHITECTURE_OF: Record<ArchFamily, string> = Object.fromEntries(
  Object.entries(BY_ARCHITECTURE).map(([arch, fam]) => [fam, arch]),
) as Record<ArchFamily, string>;

const DTYPES: Record<string, WeightDtype> = {
  float32: 'float32',
  float: 'float32',
  fp32: 'float32',
  float16: 'float16',
  half: 'float16',
  fp16: 'float16',
  bfloat16: 'bfloat16',
  bf16: 'bfloat16',
};

// ---------------------------------------------------------------------------
// the parts of a config

function detectFamily(c: Json, source: string): { family: ArchFamily; hfArchitecture: string } {
  const archs = c.architectures;
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string') {
      throw invalid(source, 'architectures', `must be a non-empty list of class names (found ${show(archs)})`);
    }
    // own keys only: "constructor" or "toString" names no family
    const family = Object.hasOwn(BY_ARCHITECTURE, archs[0]) ? BY_ARCHITECTURE[archs[0]] : undefined;
    if (family) return { family, hfArchitecture: archs[0] };
    throw new ModelError(
      'unknown-arch',
      `${source}: architecture '${oneLine(archs[0], 100)}' is not supported; ParaLab runs ${Object.keys(BY_ARCHITECTURE).join(', ')}`,
    );
  }
  const type = c.model_type;
  if (typeof type === 'string' && Object.hasOwn(BY_MODEL_TYPE, type)) {
    const family = BY_MODEL_TYPE[type];
    return { family, hfArchitecture: ARCHITECTURE_OF[family] };
  }
  if (type === undefined) {
    throw new ModelError(
      'unknown-arch',
      `${source}: neither 'architectures' nor 'model_type' is set, so the model family is unknown; add "architectures": ["LlamaForCausalLM"] (or the right class)`,
    );
  }
  throw new ModelError(
    'unknown-arch',
    `${source}: model_type ${show(type)} is not supported; ParaLab runs ${Object.keys(BY_MODEL_TYPE).join(', ')}`,
  );
}

/**
 * RoPE base and scaling. Reads transformers v4 (`rope_theta` + `rope_scaling`)
 * and v5 (`rope_parameters: {rope_type, rope_theta, ...}`) layouts.
 */
function parseRope(c: Json, source: string, defaultTheta: number): { theta: number; scaling: RopeScaling | null } {
  const params = isObject(c.rope_parameters) ? c.rope_parameters : null;
  const theta = params && params.rope_theta !== undefined
    ? posNumber(params, 'rope_theta', `${source} (rope_parameters)`, defaultTheta)
    : posNumber(c, 'rope_theta', source, defaultTheta);

  const raw = params ?? c.rope_scaling;
  const field = params ? 'rope_parameters' : 'rope_scaling';
  if (raw === undefined || raw === null) return { theta, scaling: null };
  if (!isObject(raw)) throw invalid(source, field, `must be an object or null (found ${show(raw)})`);
  const type = raw.rope_type ?? raw.type ?? 'default';
  const where = `${source} (${field})`;
  switch (type) {
    case 'default':
      return { theta, scaling: null };
    case 'linear':
      return { theta, scaling: { type: 'linear', factor: posNumber(raw, 'factor', where) } };
    case 'llama3':
      return {
        theta,
        scaling: {
          type: 'llama3',
          factor: posNumber(raw, 'factor', where),
          lowFreqFactor: posNumber(raw, 'low_freq_factor', where),
          highFreqFactor: posNumber(raw, 'high_freq_factor', where),
          originalMaxPositions: posInt(raw, 'original_max_position_embeddings', where),
        },
      };
    default:
      throw unsupported(
        source,
        `RoPE scaling type ${show(type)} is not supported (ParaLab implements 'default', 'linear' and 'llama3'); use a model without it`,
      );
  }
}

function parseDtype(c: Json, source: string): WeightDtype {
  const field = c.torch_dtype !== undefined ? 'torch_dtype' : 'dtype';
  const v = c[field];
  if (v === undefined || v === null) return 'float32';
  const name = typeof v === 'string' ? v.replace(/^torch\./, '') : undefined;
  const d = name !== undefined && Object.hasOwn(DTYPES, name) ? DTYPES[name] : undefined;
  if (!d) throw invalid(source, field, `must be float32, float16 or bfloat16 (found ${show(v)})`);
  return d;
}

function parseMoe(c: Json, family: ArchFamily, source: string): MoeConfig | null {
  switch (family) {
    case 'mixtral': {
      const experts = posInt(c, 'num_local_experts', source, 8);
      // Mixtral's `intermediate_size` is the size of one expert.
      return moe(source, experts, posInt(c, 'num_experts_per_tok', source, 2), posInt(c, 'intermediate_size', source), true, 0);
    }
    case 'qwen2_moe':
    case 'qwen3_moe':
    case 'olmoe': {
      checkAllLayersSparse(c, source);
      const shared = family === 'qwen2_moe' ? nonNegInt(c, 'shared_expert_intermediate_size', source) : 0;
      return moe(
        source,
        posInt(c, 'num_experts', source),
        posInt(c, 'num_experts_per_tok', source),
        // OLMoE has no moe_intermediate_size: its intermediate_size is one expert's.
        family === 'olmoe' ? posInt(c, 'intermediate_size', source) : posInt(c, 'moe_intermediate_size', source),
        bool(c, 'norm_topk_prob', source, false),
        shared,
      );
    }
    default:
      return null;
  }
}

function moe(source: string, experts: number, topK: number, expertFfn: number, normTopK: boolean, sharedExpertFfn: number): MoeConfig {
  if (topK > experts) {
    throw invalid(source, 'num_experts_per_tok', `(${topK}) cannot exceed the number of experts (${experts})`);
  }
  return { experts, topK, expertFfn, normTopK, sharedExpertFfn };
}

/** Qwen-MoE can interleave dense layers; ModelConfig describes one layer kind only. */
function checkAllLayersSparse(c: Json, source: string): void {
  const step = c.decoder_sparse_step;
  if (step !== undefined && step !== null && step !== 1) {
    throw unsupported(source, `decoder_sparse_step ${show(step)} mixes dense and MoE layers, which ParaLab does not run yet; only models with every layer MoE (step 1) are supported`);
  }
  const only = c.mlp_only_layers;
  if (Array.isArray(only) && only.length > 0) {
    throw unsupported(source, `mlp_only_layers ${show(only)} mixes dense and MoE layers, which ParaLab does not run yet`);
  }
}

/** Features that would change the math in ways ModelConfig cannot express. */
function rejectUnsupported(c: Json, family: ArchFamily, source: string): void {
  const act = c.hidden_act ?? c.hidden_activation ?? 'silu';
  if (act !== 'silu' && act !== 'swish') {
    throw unsupported(source, `hidden_act ${show(act)} is not supported (ParaLab's MLP is SwiGLU with silu)`);
  }
  if (family !== 'qwen2' && family !== 'qwen2_moe' && c.attention_bias === true) {
    throw unsupported(source, `attention_bias true (biases on q/k/v/o projections) is not supported for ${family}`);
  }
  if (c.mlp_bias === true) throw unsupported(source, 'mlp_bias true is not supported');
  if (c.use_sliding_window === true) {
    throw unsupported(source, 'use_sliding_window true is not supported (ParaLab attends to the whole context)');
  }
  if (c.clip_qkv !== undefined && c.clip_qkv !== null) {
    throw unsupported(source, `clip_qkv ${show(c.clip_qkv)} is not supported`);
  }
}

function parseHeads(c: Json, source: string, hidden: number): { heads: number; kvHeads: number; headDim: number } {
  const heads = posInt(c, 'num_attention_heads', source);
  const kvHeads = posInt(c, 'num_key_value_heads', source, heads);
  if (heads % kvHeads !== 0) {
    throw invalid(source, 'num_key_value_heads', `(${kvHeads}) must divide num_attention_heads (${heads})`);
  }
  if (c.head_dim !== undefined && c.head_dim !== null) {
    return { heads, kvHeads, headDim: posInt(c, 'head_dim', source) };
  }
  if (hidden % heads !== 0) {
    throw invalid(source, 'hidden_size', `(${hidden}) is not divisible by num_attention_heads (${heads}) and no head_dim is given`);
  }
  return { heads, kvHeads, headDim: hidden / heads };
}

/** Values a config may omit, per family: the defaults of the Hugging Face config classes. */
const FAMILY_DEFAULTS: Record<ArchFamily, { maxPositions: number; rmsEps: number; ropeTheta: number }> = {
  llama: { maxPositions: 2048, rmsEps: 1e-6, ropeTheta: 10000 },
  mistral: { maxPositions: 32768, rmsEps: 1e-6, ropeTheta: 10000 },
  qwen2: { maxPositions: 32768, rmsEps: 1e-6, ropeTheta: 10000 },
  qwen3: { maxPositions: 32768, rmsEps: 1e-6, ropeTheta: 10000 },
  mixtral: { maxPositions: 32768, rmsEps: 1e-5, ropeTheta: 1e6 },
  qwen2_moe: { maxPositions: 32768, rmsEps: 1e-6, ropeTheta: 10000 },
  qwen3_moe: { maxPositions: 32768, rmsEps: 1e-6, ropeTheta: 10000 },
  olmoe: { maxPositions: 4096, rmsEps: 1e-5, ropeTheta: 10000 },
};

// ---------------------------------------------------------------------------

/** Parses an already-decoded config.json. Throws ModelError naming `opts.source` and the field. */
export function parseHfConfig(json: unknown, opts: ParseConfigOptions): ModelConfig {
  const { source } = opts;
  if (!isObject(json)) {
    throw new ModelError('config-invalid', `${source}: must be a JSON object (found ${show(json)}); re-download config.json`);
  }
  const c = json;
  const { family, hfArchitecture } = detectFamily(c, source);
  rejectUnsupported(c, family, source);

  const hidden = posInt(c, 'hidden_size', source);
  const { heads, kvHeads, headDim } = parseHeads(c, source, hidden);
  const moe = parseMoe(c, family, source);
  const defaults = FAMILY_DEFAULTS[family];
  const rope = parseRope(c, source, defaults.ropeTheta);
  const gen = opts.generationConfig;
  const genSource = source.replace(/config\.json$/, 'generation_config.json');
  const bos = tokenIds(c, 'bos_token_id', source)[0] ?? tokenIds(gen, 'bos_token_id', genSource)[0] ?? null;
  const eos = [...new Set([...tokenIds(c, 'eos_token_id', source), ...tokenIds(gen, 'eos_token_id', genSource)])];

  const qkNorm = family === 'qwen3' || family === 'qwen3_moe' || family === 'olmoe';
  const config: ModelConfig = {
    family,
    hfArchitecture,
    vocabSize: posInt(c, 'vocab_size', source),
    hidden,
    layers: posInt(c, 'num_hidden_layers', source),
    heads,
    kvHeads,
    headDim,
    ffn: moe ? 0 : posInt(c, 'intermediate_size', source),
    rmsEps: posNumber(c, 'rms_norm_eps', source, defaults.rmsEps),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositions: posInt(c, 'max_position_embeddings', source, defaults.maxPositions),
    tieEmbeddings: bool(c, 'tie_word_embeddings', source, false),
    // Qwen2 (and Qwen2-MoE) hard-code bias=True on q/k/v and never on o.
    qkvBias: family === 'qwen2' || family === 'qwen2_moe',
    qkNorm,
    moe,
    dtype: parseDtype(c, source),
    bosTokenId: bos,
    eosTokenIds: eos,
  };
  if (qkNorm) config.qkNormScope = family === 'olmoe' ? 'projection' : 'head';
  return config;
}

/** Reads and parses a JSON file; ModelError 'config-invalid' naming the file when it is garbled. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ModelError('io', `${file}: cannot be read (${errorText(e)}); check the file's permissions`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelError('config-invalid', `${file}: is not valid JSON (${errorText(e)}); re-download the file or fix it`, { cause: e });
  }
}

/** Reads `<dir>/config.json` and, when present, `<dir>/generation_config.json`. */
export function loadModelConfig(dir: string): ModelConfig {
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat || !stat.isDirectory()) {
    throw new ModelError('config-missing', `${dir}: ${stat ? 'is not a folder' : 'folder not found'}; pass a Hugging Face model folder (one with config.json and *.safetensors)`);
  }
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) {
    throw new ModelError('config-missing', `${configFile}: not found; a Hugging Face model folder needs config.json next to its *.safetensors (download the whole repository, not only the weights)`);
  }
  const json = readJsonFile(configFile);
  const genFile = path.join(dir, 'generation_config.json');
  const generationConfig = fs.existsSync(genFile) ? readJsonFile(genFile) : undefined;
  return parseHfConfig(json, { source: configFile, generationConfig });
}
