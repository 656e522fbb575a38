import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelConfig } from '../../../main/engine/model/config';
import { PRESET_IDS, presetConfig, presetSpec } from '../../../main/engine/model/presets';
import { PRESET_MARKER, ensurePreset, fillNormal, isPresetComplete, presetDir } from '../../../main/engine/model/synth';
import { paramCount } from '../../../main/engine/model/types';
import { WeightStore, validateWeights } from '../../../main/engine/model/weights';
import { modelError, tmpDir } from './helpers';

const stats = (a: Float32Array) => {
  let m = 0;
  for (const x of a) m += x;
  m /= a.length;
  let v = 0;
  for (const x of a) v += (x - m) ** 2;
  return { mean: m, std: Math.sqrt(v / a.length) };
};

describe('preset configs', () => {
  it('match DESIGN.md', () => {
    expect(presetConfig('synth-llama-tiny')).toMatchObject({ hidden: 64, layers: 4, heads: 8, kvHeads: 4, ffn: 176, vocabSize: 512, tieEmbeddings: false });
    expect(presetConfig('synth-moe-tiny')).toMatchObject({ hidden: 64, layers: 4, heads: 8, kvHeads: 4, vocabSize: 512, family: 'mixtral' });
    expect(presetConfig('synth-moe-tiny').moe).toMatchObject({ experts: 8, topK: 2, expertFfn: 96 });
    const small = presetConfig('synth-llama-small');
    expect(small).toMatchObject({ hidden: 1024, layers: 8, heads: 16, kvHeads: 4, ffn: 2816, vocabSize: 32000, tieEmbeddings: false });
    expect(paramCount(small) / 1e6).toBeCloseTo(155.7, 0);
    expect(presetConfig('synth-moe-small')).toMatchObject({ hidden: 768, layers: 8, heads: 12, kvHeads: 4, vocabSize: 32000 });
    expect(presetConfig('synth-moe-small').moe).toMatchObject({ experts: 8, topK: 2, expertFfn: 1024 });
    for (const id of PRESET_IDS) {
      expect(presetConfig(id)).toMatchObject({ ropeTheta: 10000, rmsEps: 1e-5, maxPositions: 4096, dtype: 'float32', bosTokenId: 0, eosTokenIds: [1, 3] });
    }
  });

  it('unknown preset', async () => {
    const e = await modelError(() => ensurePreset('synth-gpt-huge', { cacheDir: tmpDir() }), 'unknown-preset');
    expect(e.message).toContain('synth-gpt-huge');
    expect(e.message).toContain('synth-llama-tiny');
  });
});

describe('fillNormal', () => {
  it('is deterministic, roughly N(mean, std²), and fast', () => {
    const a = new Float32Array(1 << 20);
    const t0 = performance.now();
    fillNormal(a, 42, 0, 1);
    const ms = performance.now() - t0;
    const b = new Float32Array(1 << 20);
    fillNormal(b, 42, 0, 1);
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    const s = stats(a);
    expect(Math.abs(s.mean)).toBeLessThan(0.01);
    expect(s.std).toBeCloseTo(1, 2);
    const c = new Float32Array(1000);
    fillNormal(c, 43, 0, 1);
    expect(c[0]).not.toBe(a[0]);
    expect(ms).toBeLessThan(500); // ~155M values for the small preset must take seconds, not minutes
  });
});

describe('ensurePreset', () => {
  it('writes synth-llama-tiny once, in HF layout, with the documented scales', async () => {
    const cache = tmpDir();
    const progress: number[] = [];
    const dir = await ensurePreset('synth-llama-tiny', { cacheDir: cache, onProgress: (d) => progress.push(d) });
    expect(dir).toBe(path.join(cache, 'presets', 'synth-llama-tiny-v1'));
    expect(fs.readdirSync(dir).sort()).toEqual([
      'config.json', 'generation_config.json', 'model.safetensors', PRESET_MARKER, 'tokenizer.json', 'tokenizer_config.json',
    ]);
    expect(fs.readdirSync(path.join(cache, 'presets'))).toEqual(['synth-llama-tiny-v1']); // no temp folder left
    expect(progress.length).toBeGreaterThan(10);

    const hf = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(hf).toMatchObject({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, num_key_value_heads: 4, intermediate_size: 176, tie_word_embeddings: false, torch_dtype: 'float32' });
    const config = loadModelConfig(dir);
    expect(config).toEqual(presetConfig('synth-llama-tiny'));

    const store = WeightStore.open(dir);
    validateWeights(store, config);
    expect(stats(store.readF32('model.embed_tokens.weight')).std).toBeCloseTo(1, 1);
    expect(stats(store.readF32('model.layers.0.mlp.down_proj.weight')).std).toBeCloseTo(1 / Math.sqrt(176), 2);
    expect(stats(store.readF32('lm_head.weight')).std).toBeCloseTo(4 / 8, 1);
    const norm = stats(store.readF32('model.layers.1.input_layernorm.weight'));
    expect(norm.mean).toBeCloseTo(1, 1);
    store.close();

    // second call: nothing rewritten
    const mtime = fs.statSync(path.join(dir, 'model.safetensors')).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    expect(await ensurePreset('synth-llama-tiny', { cacheDir: cache })).toBe(dir);
    expect(fs.statSync(path.join(dir, 'model.safetensors')).mtimeMs).toBe(mtime);
  });

  it('is deterministic: the same seed gives the same bytes', async () => {
    const [a, b] = await Promise.all([
      ensurePreset('synth-llama-tiny', { cacheDir: tmpDir() }),
      ensurePreset('synth-llama-tiny', { cacheDir: tmpDir() }),
    ]);
    for (const f of ['model.safetensors', 'tokenizer.json', 'config.json', 'tokenizer_config.json', PRESET_MARKER]) {
      expect(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f).toBe(true);
    }
  });

  it('concurrent calls share one write; a half folder is never taken for a finished one', async () => {
    const cache = tmpDir();
    const dirs = await Promise.all([1, 2, 3].map(() => ensurePreset('synth-llama-tiny', { cacheDir: cache })));
    expect(new Set(dirs).size).toBe(1);

    // a folder under the real name without the marker (a crash of an older, non-atomic writer, or a hand copy)
    const cache2 = tmpDir();
    const final = presetDir('synth-llama-tiny', cache2);
    fs.mkdirSync(final, { recursive: true });
    fs.writeFileSync(path.join(final, 'config.json'), '{}');
    expect(isPresetComplete(final, 'synth-llama-tiny')).toBe(false);
    // a temp folder of a writer that died long ago
    const stale = path.join(path.dirname(final), '.tmp-synth-llama-tiny-v1-999-abc');
    fs.mkdirSync(stale);
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    fs.utimesSync(stale, old, old);
    expect(await ensurePreset('synth-llama-tiny', { cacheDir: cache2 })).toBe(final);
    expect(isPresetComplete(final, 'synth-llama-tiny')).toBe(true);
    expect(fs.readdirSync(path.dirname(final))).toEqual(['synth-llama-tiny-v1']);

    // a truncated weight file makes the folder incomplete again, and it is rebuilt
    fs.truncateSync(path.join(final, 'model.safetensors'), 1000);
    expect(isPresetComplete(final, 'synth-llama-tiny')).toBe(false);
    await ensurePreset('synth-llama-tiny', { cacheDir: cache2 });
    expect(isPresetComplete(final, 'synth-llama-tiny')).toBe(true);
  });

  it('writes synth-moe-tiny in Mixtral layout', async () => {
    const dir = await ensurePreset('synth-moe-tiny', { cacheDir: tmpDir() });
    const config = loadModelConfig(dir);
    expect(config).toEqual(presetSpec('synth-moe-tiny').config);
    const hf = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(hf).toMatchObject({ architectures: ['MixtralForCausalLM'], num_local_experts: 8, num_experts_per_tok: 2, intermediate_size: 96 });
    const store = WeightStore.open(dir);
    validateWeights(store, config);
    expect(stats(store.readF32('model.layers.0.block_sparse_moe.gate.weight')).std).toBeCloseTo(1 / 8, 1);
    store.close();
  });
});
