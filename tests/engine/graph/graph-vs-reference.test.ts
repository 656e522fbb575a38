/**
 * The ONNX graph builder against the plain TypeScript reference forward (not
 * onnxruntime): greedy tokens identical and max |Δlogit| ≤ 1e-4 in fp32, for
 * each architecture feature — both attention kernels (standard ops for
 * head_dim 8, fused GroupQueryAttention for head_dim 16), QKV bias, q/k norm,
 * tied embeddings, llama3 RoPE scaling — segmented and monolithic.
 */
import { describe, expect, it } from 'vitest';
import { buildSegment, groupPieces } from '../../../main/engine/graph/segments';
import { loadShardPieces } from '../../../main/engine/rank/load-shard';
import { Executor } from '../../../main/engine/runtime/executor';
import { ropeCosSin } from '../../../main/engine/model/rope';
import { ReferenceModel, referenceGreedy } from '../../../main/engine/reference/forward';
import type { ModelConfig } from '../../../main/engine/model/types';
import { memoryReader, randomWeights } from '../../support/random-weights';
import { maxLogitDiff } from '../../support/expect-engine';

const base: ModelConfig = {
  family: 'llama',
  hfArchitecture: 'LlamaForCausalLM',
  vocabSize: 96,
  hidden: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 8,
  ffn: 40,
  rmsEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  maxPositions: 256,
  tieEmbeddings: false,
  qkvBias: false,
  qkNorm: false,
  moe: null,
  dtype: 'float32',
  bosTokenId: null,
  eosTokenIds: [],
};

const cases: [string, Partial<ModelConfig>][] = [
  ['llama, head_dim 8 (standard-op attention)', {}],
  ['llama, head_dim 16 (GroupQueryAttention)', { hidden: 64, heads: 4, kvHeads: 2, headDim: 16 }],
  ['multi-query (1 kv head), GQA kernel', { hidden: 64, heads: 4, kvHeads: 1, headDim: 16 }],
  ['qwen2: QKV bias, tied embeddings', { family: 'qwen2', hfArchitecture: 'Qwen2ForCausalLM', hidden: 64, headDim: 16, qkvBias: true, tieEmbeddings: true }],
  ['qwen3: q/k norm, explicit head_dim', { family: 'qwen3', hfArchitecture: 'Qwen3ForCausalLM', hidden: 48, heads: 4, kvHeads: 2, headDim: 16, qkNorm: true }],
  ['qwen3 q/k norm on the standard-op kernel', { family: 'qwen3', hfArchitecture: 'Qwen3ForCausalLM', qkNorm: true }],
  ['llama3 rope scaling', { headDim: 16, hidden: 64, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 } }],
];

async function runGraph(config: ModelConfig, weights: ReturnType<typeof randomWeights>, prompt: number[], maxNew: number, cut: boolean) {
  const pieces = loadShardPieces(config, memoryReader(weights), { layers: [0, config.layers], embed: true, head: true, tp: { rank: 0, size: 1 } });
  const maxSeq = 128;
  const rope = { ...ropeCosSin(config, maxSeq), maxSeq };
  const segments = groupPieces(pieces, () => cut).map((s) => buildSegment(s, rope));
  const exec = await Executor.create(segments, config.hidden, maxSeq, { device: 'cpu', threads: 1, spin: false });
  const state = exec.newBatch(1);
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  let input = prompt;
  for (let i = 0; i < maxNew; i++) {
    const out = await exec.step(state, input.length, { ids: BigInt64Array.from(input, BigInt) });
    if (!('logits' in out)) throw new Error('expected logits');
    let best = 0;
    for (let j = 1; j < out.logits.length; j++) if (out.logits[j] > out.logits[best]) best = j;
    tokens.push(best);
    logits.push(out.logits.slice());
    input = [best];
  }
  await exec.release();
  return { tokens, logits, segments: segments.length };
}


describe('ONNX segments agree with the TypeScript reference', () => {
  for (const [name, over] of cases) {
    it(name, async () => {
      const config = { ...base, ...over };
      const weights = randomWeights(config, 7);
      const ref = new ReferenceModel(config, (n) => weights.get(n)!.data);
      const prompt = [3, 17, 42, 5, 77, 11, 9];
      const want = referenceGreedy(ref, prompt, 8);
      const seg = await runGraph(config, weights, prompt, 8, true);
      const mono = await runGraph(config, weights, prompt, 8, false);
      expect(seg.segments).toBe(2 * config.layers + 2);
      expect(mono.segments).toBe(1);
      expect(seg.tokens).toEqual(want.tokens);
      expect(mono.tokens).toEqual(want.tokens);
      expect(maxLogitDiff(seg.logits, want.logits)).toBeLessThanOrEqual(1e-4);
      expect(maxLogitDiff(mono.logits, want.logits)).toBeLessThanOrEqual(1e-4);
      // The logits must actually vary, or equality would prove nothing.
      expect(new Set(want.tokens).size).toBeGreaterThan(1);
    });
  }
});
