import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelConfig } from '../../../main/engine/model/config';
import { presetConfig } from '../../../main/engine/model/presets';
import { SafetensorsFile } from '../../../main/engine/model/safetensors';
import { writeSafetensors } from '../../../main/engine/model/safetensors-write';
import { syntheticTensors, writeSyntheticModel } from '../../../main/engine/model/synth';
import { paramCount, type ArchFamily, type ModelConfig } from '../../../main/engine/model/types';
import { WeightStore, expectedTensors, validateWeights } from '../../../main/engine/model/weights';
import { modelError, tmpDir } from './helpers';

/** A tiny config of any family (sizes small enough to write in milliseconds). */
function tiny(family: ArchFamily, extra: Partial<ModelConfig> = {}): ModelConfig {
  const base = presetConfig('synth-llama-tiny');
  const arch: Record<ArchFamily, string> = {
    llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM',
    mixtral: 'MixtralForCausalLM', qwen2_moe: 'Qwen2MoeForCausalLM', qwen3_moe: 'Qwen3MoeForCausalLM', olmoe: 'OlmoeForCausalLM',
  };
  const moe = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'].includes(family)
    ? { experts: 4, topK: 2, expertFfn: 32, normTopK: family === 'mixtral', sharedExpertFfn: family === 'qwen2_moe' ? 48 : 0 }
    : null;
  const c: ModelConfig = {
    ...base, family, hfArchitecture: arch[family], layers: 2, vocabSize: 300, ffn: moe ? 0 : 40, moe,
    qkvBias: family === 'qwen2' || family === 'qwen2_moe',
    qkNorm: family === 'qwen3' || family === 'qwen3_moe' || family === 'olmoe',
    headDim: family === 'qwen3' ? 16 : 8,
    tieEmbeddings: family === 'qwen2',
    ...extra,
  };
  if (c.qkNorm) c.qkNormScope = family === 'olmoe' ? 'projection' : 'head';
  return c;
}

const FAMILIES: ArchFamily[] = ['llama', 'mistral', 'qwen2', 'qwen3', 'mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'];

describe('expectedTensors', () => {
  it('sums to paramCount for every family', () => {
    for (const f of FAMILIES) {
      const c = tiny(f);
      let n = 0;
      for (const s of expectedTensors(c).values()) n += s.reduce((a, b) => a * b, 1);
      expect(n, f).toBe(paramCount(c));
    }
  });

  it('uses the Hugging Face names and [out, in] shapes', () => {
    const llama = expectedTensors(presetConfig('synth-llama-tiny'));
    expect(llama.get('model.embed_tokens.weight')).toEqual([512, 64]);
    expect(llama.get('model.layers.3.self_attn.q_proj.weight')).toEqual([64, 64]);
    expect(llama.get('model.layers.3.self_attn.k_proj.weight')).toEqual([32, 64]);
    expect(llama.get('model.layers.3.self_attn.o_proj.weight')).toEqual([64, 64]);
    expect(llama.get('model.layers.0.mlp.gate_proj.weight')).toEqual([176, 64]);
    expect(llama.get('model.layers.0.mlp.down_proj.weight')).toEqual([64, 176]);
    expect(llama.get('lm_head.weight')).toEqual([512, 64]);
    expect(llama.size).toBe(1 + 4 * 9 + 2);

    const qwen2 = expectedTensors(tiny('qwen2'));
    expect(qwen2.get('model.layers.1.self_attn.k_proj.bias')).toEqual([32]);
    expect(qwen2.has('lm_head.weight')).toBe(false); // tied

    const qwen3 = expectedTensors(tiny('qwen3'));
    expect(qwen3.get('model.layers.0.self_attn.q_norm.weight')).toEqual([16]);
    expect(qwen3.get('model.layers.0.self_attn.q_proj.weight')).toEqual([128, 64]);

    const olmoe = expectedTensors(tiny('olmoe'));
    expect(olmoe.get('model.layers.0.self_attn.q_norm.weight')).toEqual([64]);
    expect(olmoe.get('model.layers.0.self_attn.k_norm.weight')).toEqual([32]);
    expect(olmoe.get('model.layers.0.mlp.experts.3.down_proj.weight')).toEqual([64, 32]);
    expect(olmoe.has('model.layers.0.mlp.shared_expert_gate.weight')).toBe(false);

    const mixtral = expectedTensors(presetConfig('synth-moe-tiny'));
    expect(mixtral.get('model.layers.2.block_sparse_moe.gate.weight')).toEqual([8, 64]);
    expect(mixtral.get('model.layers.2.block_sparse_moe.experts.7.w1.weight')).toEqual([96, 64]);
    expect(mixtral.get('model.layers.2.block_sparse_moe.experts.7.w3.weight')).toEqual([96, 64]);
    expect(mixtral.get('model.layers.2.block_sparse_moe.experts.7.w2.weight')).toEqual([64, 96]);
    expect(mixtral.has('model.layers.2.mlp.gate_proj.weight')).toBe(false);

    const qmoe = expectedTensors(tiny('qwen2_moe'));
    expect(qmoe.get('model.layers.0.mlp.gate.weight')).toEqual([4, 64]);
    expect(qmoe.get('model.layers.0.mlp.shared_expert.up_proj.weight')).toEqual([48, 64]);
    expect(qmoe.get('model.layers.0.mlp.shared_expert_gate.weight')).toEqual([1, 64]);
  });
});

describe('WeightStore', () => {
  it('opens and validates a synthetic folder of every family', async () => {
    for (const f of FAMILIES) {
      const dir = tmpDir();
      const c = tiny(f);
      await writeSyntheticModel(dir, c, { seed: 1 });
      expect(loadModelConfig(dir)).toEqual(c);
      const store = WeightStore.open(dir);
      validateWeights(store, c);
      expect(store.totalBytes).toBe(paramCount(c) * 4);
      store.close();
    }
  });

  it('reads a sharded model the same as a single file', async () => {
    const c = tiny('llama');
    const single = tmpDir();
    await writeSyntheticModel(single, c, { seed: 3 });
    const sharded = tmpDir();
    for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(single, f), path.join(sharded, f));
    const tensors = syntheticTensors(c, 3);
    const half = Math.floor(tensors.length / 2);
    const shards = [tensors.slice(0, half), tensors.slice(half)];
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < 2; s++) {
      const name = `model-0000${s + 1}-of-00002.safetensors`;
      await writeSafetensors(path.join(sharded, name), shards[s]);
      for (const t of shards[s]) weightMap[t.name] = name;
    }
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));

    const a = WeightStore.open(single);
    const b = WeightStore.open(sharded);
    validateWeights(b, c);
    expect(b.paths.map((p) => path.basename(p))).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(path.basename(b.fileOf('lm_head.weight'))).toBe('model-00002-of-00002.safetensors');
    expect(b.totalBytes).toBe(a.totalBytes);
    for (const name of ['model.embed_tokens.weight', 'model.layers.1.mlp.down_proj.weight', 'lm_head.weight']) {
      expect(b.readF32(name)).toEqual(a.readF32(name));
      expect(b.readF32(name, { rows: [1, 5], cols: [2, 9] })).toEqual(a.readF32(name, { rows: [1, 5], cols: [2, 9] }));
    }
    a.close();
    b.close();

    // a shard the index names is missing
    fs.renameSync(path.join(sharded, 'model-00002-of-00002.safetensors'), path.join(sharded, 'gone'));
    const e = await modelError(() => WeightStore.open(sharded), 'weights-missing');
    expect(e.message).toContain('model-00002-of-00002.safetensors');
    // the index puts a tensor in a shard that does not hold it
    fs.renameSync(path.join(sharded, 'gone'), path.join(sharded, 'model-00002-of-00002.safetensors'));
    weightMap['lm_head.weight'] = 'model-00001-of-00002.safetensors';
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
    const e2 = await modelError(() => WeightStore.open(sharded), 'tensor-missing');
    expect(e2.message).toContain("'lm_head.weight'");
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), '{"weight_map": 3}');
    await modelError(() => WeightStore.open(sharded), 'safetensors-corrupt');
  });

  it('reports a missing tensor and a shape that does not match config.json', async () => {
    const dir = tmpDir();
    const c = tiny('llama');
    await writeSyntheticModel(dir, c, { seed: 1 });
    const store = WeightStore.open(dir);
    let e = await modelError(() => validateWeights(store, { ...c, layers: 3 }), 'tensor-missing');
    expect(e.message).toContain("'model.layers.2.input_layernorm.weight'");
    expect(e.message).toContain(dir);
    e = await modelError(() => validateWeights(store, { ...c, ffn: 48 }), 'shape-mismatch');
    expect(e.message).toContain("'model.layers.0.mlp.gate_proj.weight'");
    expect(e.message).toContain('[40, 64]');
    expect(e.message).toContain('[48, 64]');
    expect(e.message).toContain(path.join(dir, 'model.safetensors'));
    await modelError(() => store.readF32('model.layers.9.mlp.up_proj.weight'), 'tensor-missing');
    store.close();

    // the same through config.json: a folder whose weights were exported for another config
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, vocab_size: 320 }));
    const s2 = WeightStore.open(dir);
    e = await modelError(() => validateWeights(s2, loadModelConfig(dir)), 'shape-mismatch');
    expect(e.message).toContain("'model.embed_tokens.weight' has shape [300, 64] but config.json implies [320, 64]");
    s2.close();
  });

  it('a folder without safetensors says so, and mentions .bin files it sees', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'x');
    const e = await modelError(() => WeightStore.open(dir), 'weights-missing');
    expect(e.message).toContain('pytorch_model.bin');
    await modelError(() => WeightStore.open(path.join(dir, 'nope')), 'weights-missing');
  });

  it('opens loose *.safetensors without an index and rejects a tensor held twice', async () => {
    const dir = tmpDir();
    const t = { name: 'x', dtype: 'F32' as const, shape: [2], data: new Float32Array([1, 2]) };
    await writeSafetensors(path.join(dir, 'a.safetensors'), [t]);
    const s = WeightStore.open(dir);
    expect([...s.readF32('x')]).toEqual([1, 2]);
    s.close();
    await writeSafetensors(path.join(dir, 'b.safetensors'), [t]);
    await modelError(() => WeightStore.open(dir), 'safetensors-corrupt');
    const b = SafetensorsFile.open(path.join(dir, 'b.safetensors'));
    expect(b.names()).toEqual(['x']);
    b.close();
  });
});
