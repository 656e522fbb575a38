/**
 * Fuzzing config.json / generation_config.json (parseHfConfig, the field
 * readers of config-fields.ts, loadModelConfig on a folder): arbitrary JSON,
 * and valid configs of every family with fields removed, retyped, zeroed,
 * negated, made huge, or with heads that do not divide hidden. Each either
 * parses to a config whose sizes are positive safe integers — and then the
 * spec check and the weight check on it answer at once, however big it
 * claims to be — or is refused with a one-line ModelError naming the field.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadModelConfig, parseHfConfig } from '../../main/engine/model/config';
import { ModelError } from '../../main/engine/model/errors';
import { toHfConfig } from '../../main/engine/model/hf-config';
import { presetConfig } from '../../main/engine/model/presets';
import { paramCount, type ArchFamily, type ModelConfig } from '../../main/engine/model/types';
import { WeightStore, validateWeights } from '../../main/engine/model/weights';
import { parseSpec, SpecError } from '../../main/engine/parallel/spec';
import { validateSpecForModel } from '../../main/engine/parallel/validate';
import { caseDir, Deep, deepJsonText, fuzzRoot, jsonText, materialize, nastyJson, nastyNumber, nastyString, outcome, params, preview } from './fuzz-helpers';

const root = fuzzRoot('config');
const PARSE = { cls: ModelError, codes: ['config-invalid', 'config-unsupported', 'unknown-arch'] };
const LOAD = { cls: ModelError, codes: ['config-invalid', 'config-unsupported', 'unknown-arch', 'config-missing', 'io'] };
const FAMILIES: ArchFamily[] = ['llama', 'mistral', 'qwen2', 'qwen3', 'mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'];
const ARCH: Record<ArchFamily, string> = {
  llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM',
  mixtral: 'MixtralForCausalLM', qwen2_moe: 'Qwen2MoeForCausalLM', qwen3_moe: 'Qwen3MoeForCausalLM', olmoe: 'OlmoeForCausalLM',
};

/** A valid config.json of every family (from the presets' shapes), some with RoPE scaling in the v4 and v5 layouts. */
const BASES: Record<string, unknown>[] = FAMILIES.flatMap((family) => {
  const moe = family === 'mixtral' || family.endsWith('_moe') || family === 'olmoe';
  const c: ModelConfig = { ...presetConfig(moe ? 'synth-moe-tiny' : 'synth-llama-tiny'), family, hfArchitecture: ARCH[family] };
  if (moe && family !== 'qwen2_moe') c.moe = { ...c.moe!, sharedExpertFfn: 0 };
  const hf = toHfConfig(c);
  return [
    hf,
    { ...hf, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } },
    { ...hf, rope_theta: undefined, rope_scaling: undefined, rope_parameters: { rope_type: 'linear', rope_theta: 5e5, factor: 2 } },
  ];
});

const FIELDS = [...new Set(BASES.flatMap((b) => Object.keys(b))), 'head_dim', 'rope_parameters', 'hidden_activation', 'dtype', 'mlp_bias', 'use_sliding_window', 'clip_qkv', 'decoder_sparse_step', 'num_local_experts'];

/** Values a field could be set to: right and wrong types, every numeric boundary, hostile strings, deep nesting. */
const fieldValue = fc.oneof(
  { weight: 4, arbitrary: nastyNumber },
  { weight: 2, arbitrary: nastyJson },
  { weight: 1, arbitrary: nastyString },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('constructor', 'toString', '__proto__', 'hasOwnProperty', ['constructor'], ['toString'], [], [null], { rope_type: 'toString' }, { type: 'llama3' }, { rope_type: 'linear', factor: 0 }, 'torch.float16', 'torch.constructor', 'gelu', 'silu', 'swish', 'int8') },
);

type Mutation =
  | { kind: 'delete'; field: string }
  | { kind: 'set'; field: string; value: unknown }
  | { kind: 'indivisible'; extra: number }
  | { kind: 'scale'; field: string; by: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), field: fc.constantFrom(...FIELDS) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), field: fc.constantFrom(...FIELDS), value: fieldValue }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('set' as const), field: nastyString, value: fieldValue }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('indivisible' as const), extra: fc.integer({ min: 1, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('scale' as const), field: fc.constantFrom('hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'num_experts', 'num_local_experts', 'vocab_size', 'intermediate_size', 'moe_intermediate_size', 'head_dim', 'max_position_embeddings'), by: fc.constantFrom(0, -1, 3, 1e3, 1e6, 1e9, 2 ** 40, 1e300) }) },
);

function mutate(base: Record<string, unknown>, ms: Mutation[]): Record<string, unknown> {
  const c: Record<string, unknown> = { ...base };
  for (const m of ms) {
    if (m.kind === 'delete') delete c[m.field];
    else if (m.kind === 'set') Object.defineProperty(c, m.field, { value: m.value, enumerable: true, writable: true, configurable: true });
    else if (m.kind === 'indivisible') {
      // heads that do not divide hidden, and no head_dim to fall back on
      delete c.head_dim;
      c.hidden_size = (typeof c.num_attention_heads === 'number' ? c.num_attention_heads : 4) * 8 + m.extra;
    } else if (typeof c[m.field] === 'number') c[m.field] = (c[m.field] as number) * m.by;
  }
  return c;
}

/** A config that parsed: its sizes must be usable by everything downstream. */
function checkParsed(c: ModelConfig, input: () => string): void {
  const sizes = { vocabSize: c.vocabSize, hidden: c.hidden, layers: c.layers, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, maxPositions: c.maxPositions };
  for (const [k, v] of Object.entries(sizes)) expect(Number.isSafeInteger(v) && v > 0, `${k}=${v}; ${input()}`).toBe(true);
  expect(c.heads % c.kvHeads, input()).toBe(0);
  expect(FAMILIES, input()).toContain(c.family);
  expect(['float32', 'float16', 'bfloat16'], input()).toContain(c.dtype);
  expect(Number.isFinite(c.rmsEps) && c.rmsEps > 0 && Number.isFinite(c.ropeTheta) && c.ropeTheta > 0, input()).toBe(true);
  if (c.moe) {
    expect(Number.isSafeInteger(c.moe.experts) && c.moe.topK >= 1 && c.moe.topK <= c.moe.experts, input()).toBe(true);
  } else {
    expect(Number.isSafeInteger(c.ffn) && c.ffn > 0, input()).toBe(true);
  }
  for (const id of c.eosTokenIds) expect(Number.isSafeInteger(id) && id >= 0, input()).toBe(true);
  expect(typeof paramCount(c)).toBe('number');
}

let store: WeightStore;
beforeAll(() => {
  // a folder with one small tensor: every config that parses is checked against it
  const dir = caseDir(root());
  const header = Buffer.from(JSON.stringify({ 'model.embed_tokens.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([len, header, Buffer.alloc(16)]));
  store = WeightStore.open(dir);
  return () => store.close();
});

const SPECS = ['tp=2', 'tp=3', 'pp=4', 'sp=2', 'sp=4,sp_impl=usp,ulysses=2', 'dp=2,ep=2', 'dp=3,ep=3', 'tp=2,sp_impl=megatron', 'tp=4,ep=2'].map(parseSpec);

/** The checks a host runs next on a parsed config: they must answer (notes or a clean error) at once, however big the config claims to be. */
function downstream(c: ModelConfig, input: () => string): void {
  for (const spec of SPECS) outcome(() => validateSpecForModel(spec, c), { cls: SpecError }, input);
  outcome(() => validateWeights(store, c), { cls: ModelError, codes: ['tensor-missing', 'shape-mismatch', 'unsupported-dtype'] }, input);
}

describe('config.json fuzz', () => {
  it('arbitrary JSON values as config.json and generation_config.json: a config or a one-line ModelError', () => {
    fc.assert(
      fc.property(nastyJson, fc.option(nastyJson, { nil: undefined }), (json, gen) => {
        const input = () => `${preview(json)} gen ${preview(gen)}`;
        const r = outcome(() => parseHfConfig(materialize(json), { source: '/m/config.json', generationConfig: materialize(gen) }), PARSE, input);
        if (r.ok) checkParsed(r.value, input);
      }),
      params(1500),
    );
  });

  it('valid configs of every family, mutated: a sane config or a one-line ModelError naming the field', () => {
    let parsed = 0;
    fc.assert(
      fc.property(fc.constantFrom(...BASES), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.option(fc.record({ eos_token_id: fieldValue, bos_token_id: fieldValue }), { nil: undefined }), (base, ms, gen) => {
        const json = mutate(base, ms);
        const input = () => `${preview(base.architectures)} ${preview(ms)} gen ${preview(gen)}`;
        const r = outcome(() => parseHfConfig(materialize(json), { source: '/m/config.json', generationConfig: materialize(gen) }), PARSE, input);
        if (!r.ok) return;
        parsed++;
        checkParsed(r.value, input);
        downstream(r.value, input);
      }),
      params(4000),
    );
    // the mutations must leave many configs valid, so the downstream checks run
    expect(parsed).toBeGreaterThan(400);
  });

  it('sizes far past any real model: refused, or parsed and then checked against the weights without building a list that size', () => {
    const big = fc.constantFrom(1e6, 1e9, 2 ** 31, 2 ** 40, 2 ** 52, 2 ** 53 - 1, 2 ** 53, 1e300);
    fc.assert(
      fc.property(fc.constantFrom(...BASES), fc.subarray(['num_hidden_layers', 'num_experts', 'num_local_experts', 'num_attention_heads', 'vocab_size', 'hidden_size', 'head_dim', 'intermediate_size'], { minLength: 1 }), big, (base, fields, n) => {
        const json: Record<string, unknown> = { ...base };
        for (const f of fields) json[f] = n;
        if (fields.includes('num_attention_heads')) json.num_key_value_heads = n;
        const input = () => `${preview(base.architectures)} ${fields.join(',')}=${n}`;
        const r = outcome(() => parseHfConfig(json, { source: '/m/config.json' }), PARSE, input);
        if (r.ok) {
          checkParsed(r.value, input);
          downstream(r.value, input);
        }
      }),
      params(400),
    );
  });
});

describe('loadModelConfig fuzz (files on disk)', () => {
  const content = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...BASES), fc.array(mutation, { maxLength: 3 })).map(([b, ms]) => jsonText(mutate(b, ms))) },
    { weight: 2, arbitrary: nastyJson.map(jsonText) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('latin1')) },
    { weight: 1, arbitrary: fc.constantFrom('', '{', '{"a":\n', '\uFEFF{}', '{"architectures":["LlamaForCausalLM"]', deepJsonText(50_000, 'array'), `{"architectures":${deepJsonText(50_000, 'array')}}`) },
  );
  const kind = fc.constantFrom<'file' | 'missing' | 'folder-as-config' | 'no-dir' | 'dir-is-file'>('file', 'file', 'file', 'file', 'file', 'file', 'missing', 'folder-as-config', 'no-dir', 'dir-is-file');

  it('config.json / generation_config.json with random or mutated content: a config or a one-line ModelError', () => {
    fc.assert(
      fc.property(content, fc.option(content, { nil: undefined }), kind, (config, gen, k) => {
        let dir = caseDir(root());
        if (k === 'file') fs.writeFileSync(path.join(dir, 'config.json'), config, 'latin1');
        if (k === 'folder-as-config') fs.mkdirSync(path.join(dir, 'config.json'));
        if (k === 'no-dir') dir = path.join(dir, 'absent');
        if (k === 'dir-is-file') {
          dir = path.join(dir, 'a-file');
          fs.writeFileSync(dir, config);
        }
        if (gen !== undefined && k !== 'no-dir' && k !== 'dir-is-file') fs.writeFileSync(path.join(dir, 'generation_config.json'), gen);
        const input = () => `${k} ${preview(config)} gen ${preview(gen)}`;
        const r = outcome(() => loadModelConfig(dir), LOAD, input);
        if (r.ok) checkParsed(r.value, input);
      }),
      params(500),
    );
  });

  it('a config nested 50 000 deep in any field is refused with a one-line message', () => {
    fc.assert(
      fc.property(fc.constantFrom(...BASES), fc.constantFrom(...FIELDS), fc.constantFrom(new Deep('array'), new Deep('object')), (base, field, deep) => {
        const input = () => `${preview(base.architectures)} ${field}=${deep.kind}`;
        const r = outcome(() => parseHfConfig(materialize({ ...base, [field]: deep }), { source: '/m/config.json' }), PARSE, input);
        if (r.ok) checkParsed(r.value, input);
      }),
      params(150),
    );
  });
});
