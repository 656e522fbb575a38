import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../../main/engine/model/types';
import { hfNames, ReferenceModel, referenceGreedy } from '../../../main/engine/reference/forward';
import { lookup, maxAbsDiff, randomWeights, tinyConfig } from './tinyModel';

const VARIANTS: [string, ModelConfig][] = [
  ['llama (GQA 4/2, untied)', tinyConfig()],
  ['tied embeddings', tinyConfig({ tieEmbeddings: true })],
  ['qwen2 (QKV bias)', tinyConfig({ family: 'qwen2', qkvBias: true })],
  ['qwen3 (per-head q/k norm)', tinyConfig({ family: 'qwen3', qkNorm: true })],
  ['llama3 rope scaling', tinyConfig({ ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16 } })],
  ['mixtral (8 experts top-2)', tinyConfig({ family: 'mixtral', ffn: 0, moe: { experts: 8, topK: 2, expertFfn: 12, normTopK: true, sharedExpertFfn: 0 } })],
  ['qwen2-moe (shared expert, no renorm)', tinyConfig({ family: 'qwen2_moe', qkvBias: true, ffn: 0, moe: { experts: 4, topK: 2, expertFfn: 8, normTopK: false, sharedExpertFfn: 20 } })],
];

const TOKENS = [3, 17, 5, 39, 0, 22, 8, 8, 11];

describe('ReferenceModel', () => {
  for (const [name, config] of VARIANTS) {
    it(`${name}: KV-cache decoding equals full recomputation`, () => {
      const model = new ReferenceModel(config, lookup(randomWeights(config, 7)));
      const full = model.forwardAll(TOKENS, model.newCache());
      expect(full).toHaveLength(TOKENS.length);

      // prefill 4, then one token at a time
      const cache = model.newCache();
      const inc = [...model.forwardAll(TOKENS.slice(0, 4), cache)];
      for (let i = 4; i < TOKENS.length; i++) inc.push(model.forward([TOKENS[i]], cache));
      expect(cache.length).toBe(TOKENS.length);
      // chunked: 2 + 3 + 4
      const cache2 = model.newCache();
      const chunked = [TOKENS.slice(0, 2), TOKENS.slice(2, 5), TOKENS.slice(5)].flatMap((chunk) => model.forwardAll(chunk, cache2));

      for (let i = 0; i < TOKENS.length; i++) {
        expect(maxAbsDiff(inc[i], full[i])).toBeLessThanOrEqual(1e-5);
        expect(maxAbsDiff(chunked[i], full[i])).toBeLessThanOrEqual(1e-5);
      }
      // the logits are not degenerate
      expect(maxAbsDiff(full[0], full[1])).toBeGreaterThan(1e-3);
    });
  }

  it('OLMoE-style q/k norm over the whole projection', () => {
    const config = tinyConfig({ family: 'olmoe', qkNorm: true, ffn: 0, moe: { experts: 4, topK: 2, expertFfn: 8, normTopK: false, sharedExpertFfn: 0 } });
    const w = randomWeights(config, 3);
    for (let l = 0; l < config.layers; l++) {
      const n = hfNames(config, l);
      w.set(n.qNorm, Float32Array.from({ length: config.heads * config.headDim }, (_, i) => 0.9 + 0.01 * i));
      w.set(n.kNorm, Float32Array.from({ length: config.kvHeads * config.headDim }, (_, i) => 1.1 - 0.01 * i));
    }
    const model = new ReferenceModel(config, lookup(w));
    const full = model.forwardAll(TOKENS, model.newCache());
    const cache = model.newCache();
    model.forward(TOKENS.slice(0, 8), cache);
    expect(maxAbsDiff(model.forward([TOKENS[8]], cache), full[8])).toBeLessThanOrEqual(1e-5);
  });

  it('GQA reads KV head ⌊h / group⌋ (same as repeating KV heads)', () => {
    const gqa = tinyConfig({ qkvBias: true });
    const mha = tinyConfig({ qkvBias: true, kvHeads: gqa.heads });
    const w = randomWeights(gqa, 11);
    const wm = new Map(w);
    const D = gqa.headDim;
    const group = gqa.heads / gqa.kvHeads;
    const repeat = (t: Float32Array, rowLen: number) => {
      const out = new Float32Array(gqa.heads * D * rowLen);
      for (let h = 0; h < gqa.heads; h++) {
        const g = Math.floor(h / group);
        out.set(t.subarray(g * D * rowLen, (g + 1) * D * rowLen), h * D * rowLen);
      }
      return out;
    };
    for (let l = 0; l < gqa.layers; l++) {
      const n = hfNames(gqa, l);
      for (const p of [n.k, n.v]) {
        wm.set(`${p}.weight`, repeat(w.get(`${p}.weight`)!, gqa.hidden));
        wm.set(`${p}.bias`, repeat(w.get(`${p}.bias`)!, 1));
      }
    }
    const a = new ReferenceModel(gqa, lookup(w)).forwardAll(TOKENS, new ReferenceModel(gqa, lookup(w)).newCache());
    const mhaModel = new ReferenceModel(mha, lookup(wm));
    const b = mhaModel.forwardAll(TOKENS, mhaModel.newCache());
    for (let i = 0; i < TOKENS.length; i++) expect(maxAbsDiff(a[i], b[i])).toBeLessThanOrEqual(1e-9);
  });

  it('referenceGreedy follows the argmax and stops at eos', () => {
    const config = tinyConfig();
    const model = new ReferenceModel(config, lookup(randomWeights(config, 5)));
    const { tokens, logits } = referenceGreedy(model, [1, 2, 3], 6);
    expect(tokens).toHaveLength(6);
    expect(logits).toHaveLength(6);
    // replay without cache: each token is the argmax of the full-sequence logits
    const seq = [1, 2, 3];
    for (let i = 0; i < tokens.length; i++) {
      const l = model.forward(seq, model.newCache());
      expect(maxAbsDiff(l, logits[i])).toBeLessThanOrEqual(1e-5);
      const best = l.indexOf(Math.max(...l));
      expect(tokens[i]).toBe(best);
      seq.push(tokens[i]);
    }
    const stopped = referenceGreedy(model, [1, 2, 3], 6, [tokens[1]]);
    expect(stopped.tokens).toEqual(tokens.slice(0, tokens.indexOf(tokens[1]) + 1));
  });

  it('says which weight is wrong or which token is out of range', () => {
    const config = tinyConfig();
    const w = randomWeights(config, 1);
    w.set('model.norm.weight', new Float32Array(3));
    const model = new ReferenceModel(config, lookup(w));
    expect(() => model.forward([1], model.newCache())).toThrow(/weight model.norm.weight has 3 values, expected 16/);
    expect(() => model.forward([40], model.newCache())).toThrow(/token id 40 is outside the vocabulary 0..39/);
  });
});
