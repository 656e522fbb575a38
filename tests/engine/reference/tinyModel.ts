/**
 * Tiny random Llama / MoE models held in memory, addressed by Hugging Face
 * tensor names, for the reference-forward tests.
 */
import type { ModelConfig } from '../../../main/engine/model/types';
import { hfNames } from '../../../main/engine/reference/forward';

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    family: 'llama', hfArchitecture: 'LlamaForCausalLM', vocabSize: 40, hidden: 16, layers: 2, heads: 4, kvHeads: 2,
    headDim: 4, ffn: 24, rmsEps: 1e-6, ropeTheta: 10000, ropeScaling: null, maxPositions: 64, tieEmbeddings: false,
    qkvBias: false, qkNorm: false, moe: null, dtype: 'float32', bosTokenId: null, eosTokenIds: [0],
    ...over,
  };
}

/** mulberry32: a few lines, good enough for test weights. */
export function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every tensor the config needs, random: matrices in ±scale, norm weights near 1. */
export function randomWeights(c: ModelConfig, seed = 1, scale = 0.3): Map<string, Float32Array> {
  const rnd = uniform(seed);
  const m = new Map<string, Float32Array>();
  const mat = (name: string, n: number) => m.set(name, Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale));
  const norm = (name: string, n: number) => m.set(name, Float32Array.from({ length: n }, () => 0.8 + 0.4 * rnd()));
  const H = c.hidden;
  const D = c.headDim;
  mat('model.embed_tokens.weight', c.vocabSize * H);
  for (let l = 0; l < c.layers; l++) {
    const n = hfNames(c, l);
    norm(n.inputNorm, H);
    norm(n.postNorm, H);
    mat(`${n.q}.weight`, c.heads * D * H);
    mat(`${n.k}.weight`, c.kvHeads * D * H);
    mat(`${n.v}.weight`, c.kvHeads * D * H);
    mat(n.o, H * c.heads * D);
    if (c.qkvBias) {
      mat(`${n.q}.bias`, c.heads * D);
      mat(`${n.k}.bias`, c.kvHeads * D);
      mat(`${n.v}.bias`, c.kvHeads * D);
    }
    if (c.qkNorm) {
      norm(n.qNorm, D);
      norm(n.kNorm, D);
    }
    if (c.moe) {
      const F = c.moe.expertFfn;
      mat(n.router, c.moe.experts * H);
      for (let e = 0; e < c.moe.experts; e++) {
        const en = n.expert(e);
        mat(en.gate, F * H);
        mat(en.up, F * H);
        mat(en.down, H * F);
      }
      if (c.moe.sharedExpertFfn > 0) {
        const S = c.moe.sharedExpertFfn;
        mat(n.shared.gate, S * H);
        mat(n.shared.up, S * H);
        mat(n.shared.down, H * S);
        mat(n.sharedGate, H);
      }
    } else {
      mat(n.mlp.gate, c.ffn * H);
      mat(n.mlp.up, c.ffn * H);
      mat(n.mlp.down, H * c.ffn);
    }
  }
  norm('model.norm.weight', H);
  if (!c.tieEmbeddings) mat('lm_head.weight', c.vocabSize * H);
  return m;
}

/** The lookup ReferenceModel wants, failing loudly on a missing name. */
export function lookup(m: Map<string, Float32Array>): (name: string) => Float32Array {
  return (name) => {
    const t = m.get(name);
    if (!t) throw new Error(`test weights have no tensor ${name}`);
    return t;
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
