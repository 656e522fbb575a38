import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../../main/engine/model/types';
import { hfNames, ReferenceModel, routeTopK } from '../../../main/engine/reference/forward';
import { lookup, maxAbsDiff, randomWeights, tinyConfig } from './tinyModel';

const TOKENS = [4, 9, 1, 33, 12];

function logits(config: ModelConfig, w: Map<string, Float32Array>): Float32Array[] {
  const m = new ReferenceModel(config, lookup(w));
  return m.forwardAll(TOKENS, m.newCache());
}

/** MoE weights whose expert `e` (and shared expert) copy the dense MLP, down scaled by `downScale`. */
function moeFromDense(dense: ModelConfig, moe: ModelConfig, w: Map<string, Float32Array>, downScale = 1): Map<string, Float32Array> {
  const out = new Map(w);
  for (let l = 0; l < dense.layers; l++) {
    const d = hfNames(dense, l).mlp;
    const n = hfNames(moe, l);
    out.delete(d.gate);
    out.delete(d.up);
    out.delete(d.down);
    out.set(n.router, Float32Array.from({ length: moe.moe!.experts * moe.hidden }, (_, i) => Math.sin(i)));
    const down = w.get(d.down)!.map((v) => v * downScale);
    for (let e = 0; e < moe.moe!.experts; e++) {
      const en = n.expert(e);
      out.set(en.gate, w.get(d.gate)!);
      out.set(en.up, w.get(d.up)!);
      out.set(en.down, down);
    }
    if (moe.moe!.sharedExpertFfn > 0) {
      out.set(n.shared.gate, w.get(d.gate)!);
      out.set(n.shared.up, w.get(d.up)!);
      out.set(n.shared.down, down);
      out.set(n.sharedGate, new Float32Array(moe.hidden)); // sigmoid(0) = 1/2
    }
  }
  return out;
}

describe('MoE reference', () => {
  const dense = tinyConfig();
  const w = randomWeights(dense, 21);
  const want = logits(dense, w);

  it('one expert, top-1 (Mixtral names) equals the dense MLP', () => {
    const moe = tinyConfig({ family: 'mixtral', ffn: 0, moe: { experts: 1, topK: 1, expertFfn: dense.ffn, normTopK: true, sharedExpertFfn: 0 } });
    const got = logits(moe, moeFromDense(dense, moe, w));
    want.forEach((l, i) => expect(maxAbsDiff(got[i], l)).toBeLessThanOrEqual(1e-9));
  });

  it('identical experts, top-2 of 4 with renormalisation, equal the dense MLP', () => {
    const moe = tinyConfig({ family: 'qwen3_moe', ffn: 0, moe: { experts: 4, topK: 2, expertFfn: dense.ffn, normTopK: true, sharedExpertFfn: 0 } });
    const got = logits(moe, moeFromDense(dense, moe, w));
    want.forEach((l, i) => expect(maxAbsDiff(got[i], l)).toBeLessThanOrEqual(1e-9));
  });

  it('Qwen2-MoE shared expert adds sigmoid(x·w)·shared(x)', () => {
    // expert and shared expert both = dense MLP with down × 2/3; gate weight 0 → 1·(2/3) + ½·(2/3) = 1.
    const moe = tinyConfig({ family: 'qwen2_moe', ffn: 0, moe: { experts: 1, topK: 1, expertFfn: dense.ffn, normTopK: false, sharedExpertFfn: dense.ffn } });
    const got = logits(moe, moeFromDense(dense, moe, w, 2 / 3));
    want.forEach((l, i) => expect(maxAbsDiff(got[i], l)).toBeLessThanOrEqual(1e-6));
  });

  it('top-k picks the largest probabilities, ties to the lowest index', () => {
    const p = Float64Array.from([0.1, 0.3, 0.2, 0.3, 0.1]);
    expect(routeTopK(p, 2, false)).toEqual({ ids: [1, 3], weights: [0.3, 0.3] });
    const r = routeTopK(p, 3, true);
    expect(r.ids).toEqual([1, 3, 2]);
    expect(r.weights.reduce((a, b) => a + b)).toBeCloseTo(1, 15);
    expect(r.weights[2]).toBeCloseTo(0.2 / 0.8, 15);
    expect(routeTopK(Float64Array.from([0.25, 0.25, 0.25, 0.25]), 2, false).ids).toEqual([0, 1]);
  });
});
