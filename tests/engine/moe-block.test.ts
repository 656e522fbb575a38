/**
 * The MoE sublayer on one worker (router graph, one graph per expert, the
 * weighted combine in the block) against the plain TypeScript reference
 * forward, for the MoE families: Mixtral (softmax → top-k → renormalise),
 * Qwen2-MoE (no renormalisation, shared expert with sigmoid gate, QKV bias),
 * Qwen3-MoE (norm_topk_prob, per-head q/k norm), OLMoE (q/k norm over the whole projection). Also: the expert load the
 * block records sums to tokens × top-k per layer, and the pure helpers of
 * parallel/ep/ (ownership, token classes, lockstep sets, balancedness).
 */
import { describe, expect, it } from 'vitest';
import { loadShardPieces } from '../../main/engine/rank/load-shard';
import { Executor } from '../../main/engine/runtime/executor';
import type { StepStats } from '../../main/engine/runtime/block';
import { buildItems } from '../../main/engine/rank/blocks';
import { ropeCosSin } from '../../main/engine/model/rope';
import { ReferenceModel, referenceGreedy } from '../../main/engine/reference/forward';
import type { ModelConfig } from '../../main/engine/model/types';
import type { ShardPlan } from '../../main/engine/parallel/plan';
import { expertRange, ownerOf, tokenClass } from '../../main/engine/parallel/ep/plan';
import { lockstepReplicaSets } from '../../main/engine/parallel/ep/lockstep';
import { addLoad, balancedness, emptyLoad } from '../../main/engine/parallel/ep/load';
import { loadMoePiece } from '../../main/engine/parallel/ep/weights';
import { buildMesh } from '../../main/engine/parallel/mesh';
import { parseSpec } from '../../main/engine/parallel/spec';
import { memoryReader, randomWeights } from '../support/random-weights';
import { maxLogitDiff } from '../support/expect-engine';

const base: ModelConfig = {
  family: 'mixtral',
  hfArchitecture: 'MixtralForCausalLM',
  vocabSize: 96,
  hidden: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 8,
  ffn: 0,
  rmsEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  maxPositions: 256,
  tieEmbeddings: false,
  qkvBias: false,
  qkNorm: false,
  moe: { experts: 4, topK: 2, expertFfn: 24, normTopK: true, sharedExpertFfn: 0 },
  dtype: 'float32',
  bosTokenId: null,
  eosTokenIds: [],
};

const cases: [string, Partial<ModelConfig>][] = [
  ['mixtral: 4 experts top-2, renormalised', {}],
  [
    'qwen2-moe: no renormalisation, shared expert with sigmoid gate, QKV bias',
    { family: 'qwen2_moe', hfArchitecture: 'Qwen2MoeForCausalLM', qkvBias: true, moe: { experts: 4, topK: 2, expertFfn: 16, normTopK: false, sharedExpertFfn: 40 } },
  ],
  [
    'qwen3-moe: 8 experts top-3, norm_topk_prob, q/k norm',
    { family: 'qwen3_moe', hfArchitecture: 'Qwen3MoeForCausalLM', qkNorm: true, moe: { experts: 8, topK: 3, expertFfn: 16, normTopK: true, sharedExpertFfn: 0 } },
  ],
  [
    'olmoe: q/k norm over the whole projection, no renormalisation',
    { family: 'olmoe', hfArchitecture: 'OlmoeForCausalLM', qkNorm: true, qkNormScope: 'projection', moe: { experts: 8, topK: 2, expertFfn: 16, normTopK: false, sharedExpertFfn: 0 } },
  ],
];

const plan: ShardPlan = { layers: [0, 2], embed: true, head: true, tp: { rank: 0, size: 1 } };

async function runGraph(config: ModelConfig, weights: ReturnType<typeof randomWeights>, prompt: number[], maxNew: number) {
  const p = { ...plan, layers: [0, config.layers] as [number, number] };
  const pieces = loadShardPieces(config, memoryReader(weights), p);
  const maxSeq = 64;
  const rope = { ...ropeCosSin(config, maxSeq), maxSeq };
  const session = { device: 'cpu' as const, threads: 1, spin: false };
  const items = await buildItems(pieces, () => false, { rank: 0, plan: p, config, rope, session, group: () => null, shared: new Map() });
  const exec = await Executor.create(items, config.hidden, maxSeq, session);
  const state = exec.newBatch(1);
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  const loads: Record<number, number[]>[] = [];
  let input = prompt;
  for (let i = 0; i < maxNew; i++) {
    const stats: StepStats = { routed: {} };
    const out = await exec.step(state, input.length, { ids: BigInt64Array.from(input, BigInt) }, undefined, undefined, { stats });
    if (!('logits' in out)) throw new Error('expected logits');
    loads.push(stats.routed);
    let best = 0;
    for (let j = 1; j < out.logits.length; j++) if (out.logits[j] > out.logits[best]) best = j;
    tokens.push(best);
    logits.push(out.logits.slice());
    input = [best];
  }
  await exec.release();
  return { tokens, logits, loads, blocks: items.filter((i) => 'kind' in i && i.kind === 'block').length };
}


describe('MoE block agrees with the TypeScript reference', () => {
  for (const [name, over] of cases) {
    it(name, async () => {
      const config = { ...base, ...over };
      const weights = randomWeights(config, 5);
      const ref = new ReferenceModel(config, (n) => weights.get(n)!.data);
      const prompt = [3, 17, 42, 5, 77, 11, 9];
      const want = referenceGreedy(ref, prompt, 6);
      const got = await runGraph(config, weights, prompt, 6);
      expect(got.blocks).toBe(config.layers);
      expect(got.tokens).toEqual(want.tokens);
      expect(maxLogitDiff(got.logits, want.logits)).toBeLessThanOrEqual(1e-4);
      expect(new Set(want.tokens).size).toBeGreaterThan(1);
      // expert load: every token of every step is routed to top-k experts in each layer
      got.loads.forEach((routed, step) => {
        const tokens = step === 0 ? prompt.length : 1;
        for (let l = 0; l < config.layers; l++) {
          expect(routed[l]).toHaveLength(config.moe!.experts);
          expect(routed[l].reduce((a, b) => a + b, 0)).toBe(tokens * config.moe!.topK);
        }
      });
    });
  }
});

describe('expert placement and loading', () => {
  it('an ep rank reads only its experts, whole; tp without ep reads a slice of every expert', () => {
    const config = { ...base, moe: { experts: 8, topK: 2, expertFfn: 24, normTopK: true, sharedExpertFfn: 0 } };
    const weights = randomWeights(config, 3);
    const r = memoryReader(weights);
    const ep1 = loadMoePiece(config, r, 1, { tp: { rank: 0, size: 1 }, ep: { rank: 1, size: 2 } });
    expect(ep1.w.experts.map((e) => e.id)).toEqual([4, 5, 6, 7]);
    expect(ep1.s.ffn).toBe(24);
    // (H, 2F): column f of the gate half is row f of HF w1 (F, H)
    const w1 = weights.get('model.layers.1.block_sparse_moe.experts.5.w1.weight')!.data;
    expect(ep1.w.experts[1].wgu[3 * 48 + 7]).toBe(w1[7 * 32 + 3]);
    const tp = loadMoePiece(config, r, 0, { tp: { rank: 1, size: 2 } });
    expect(tp.w.experts).toHaveLength(8);
    expect(tp.s.ffn).toBe(12);
    expect(tp.w.experts[0].wdown.length).toBe(12 * 32);
  });

  it('ownership, token classes and lockstep replica sets', () => {
    expect(expertRange(8, 4, 2)).toEqual([4, 6]);
    expect([0, 3, 4, 7].map((e) => ownerOf(e, 8, 2))).toEqual([0, 0, 1, 1]);
    expect(tokenClass({ tp: { rank: 0, size: 1 }, ep: { rank: 1, size: 2 } })).toBeNull();
    expect(tokenClass({ tp: { rank: 1, size: 2 }, ep: { rank: 1, size: 2 } })).toEqual({ via: 'ep', size: 2, index: 1 });
    expect(tokenClass({ tp: { rank: 1, size: 2 }, ep: { rank: 3, size: 4 } })).toEqual({ via: 'tp', size: 2, index: 1 });
    expect(tokenClass({ tp: { rank: 1, size: 4 }, ep: { rank: 1, size: 2 } })).toEqual({ via: 'ep', size: 2, index: 1 });
    expect(() => tokenClass({ tp: { rank: 0, size: 2 }, ep: { rank: 0, size: 3 } })).toThrow(/one must divide the other/);
    expect(lockstepReplicaSets(buildMesh(parseSpec('dp=2,ep=2')))).toEqual([[0, 1]]);
    expect(lockstepReplicaSets(buildMesh(parseSpec('dp=4,ep=2')))).toEqual([[0, 1], [2, 3]]);
    expect(lockstepReplicaSets(buildMesh(parseSpec('dp=2,tp=2,ep=2')))).toEqual([[0], [1]]);
    expect(lockstepReplicaSets(buildMesh(parseSpec('pp=2,dp=2,ep=2')))).toEqual([[0, 1]]);
    expect(lockstepReplicaSets(buildMesh(parseSpec('dp=2')))).toEqual([[0], [1]]);
  });

  it('expert load sums ranks and reports max ÷ mean per layer', () => {
    const load = emptyLoad(2, 2, 4);
    addLoad(load, 0, { 0: [3, 1, 0, 0], 1: [1, 1, 1, 1] });
    addLoad(load, 1, { 0: [1, 1, 0, 2] });
    expect(load.tokens[0]).toEqual([4, 2, 0, 2]);
    expect(load.byRank[1][0]).toEqual([1, 1, 0, 2]);
    expect(load.balancedness[0]).toBeCloseTo(2);
    expect(load.balancedness[1]).toBe(1);
    expect(balancedness([0, 0])).toBeNaN();
  });
});
