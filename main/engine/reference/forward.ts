/**
 * Reference forward pass in plain TypeScript: naive loops, float64
 * activations, no onnxruntime. Tests use it to check the ONNX graph builders
 * against something that shares none of their code (except the RoPE tables'
 * inverse frequencies, model/rope.ts). Slow by design; tiny models only.
 *
 * Llama family, one decoder layer (x: (H) per token):
 *   h = RMSNorm(x)·w_in
 *   q, k, v = h·Wqᵀ (+bq), h·Wkᵀ (+bk), h·Wvᵀ (+bv)      (nH·D), (nKV·D), (nKV·D)
 *   [Qwen3] q, k = RMSNorm per head (q_norm, k_norm: (D)); [OLMoE] over the whole projection
 *   q, k = RoPE(q, k, position)                            rotate-half
 *   attn_h = softmax(q_h·K_gᵀ / √D, causal)·V_g            g = ⌊h / (nH/nKV)⌋ (GQA)
 *   x += attn·Woᵀ
 *   x += MLP(RMSNorm(x)·w_post)
 * MLP: SwiGLU down(silu(gate(x)) ⊙ up(x)), or MoE:
 *   p = softmax(x·Wgᵀ) over all experts (E); top-k by p, ties → lowest index;
 *   weights renormalised to sum 1 when normTopK;
 *   y = Σ_top-k p_e·expert_e(x)  [+ sigmoid(x·w_sg)·shared(x), Qwen2-MoE]
 * Output: logits = RMSNorm(x)·w_final · Eᵀ (E = lm_head, or embed_tokens when tied).
 *
 * Weights are fetched by Hugging Face tensor name (see `hfNames`), once each.
 */
import { ropeInvFreq } from '../model/rope';
import type { ModelConfig } from '../model/types';
import { argmax, linear, rmsNorm, rmsNormInPlace, ropeInPlace, sigmoid, softmaxInPlace, swiglu } from './ops';

/** Per-layer K/V of every position seen so far, K after RoPE: k[layer][pos] is (nKV·D). */
export class RefKvCache {
  readonly k: Float64Array[][];
  readonly v: Float64Array[][];

  constructor(layers: number) {
    this.k = Array.from({ length: layers }, () => []);
    this.v = Array.from({ length: layers }, () => []);
  }

  /** positions cached */
  get length(): number {
    return this.k.length === 0 ? 0 : this.k[0].length;
  }
}

/** Top-k routing: ids by descending probability (ties → lowest id) and their weights. */
export function routeTopK(probs: Float64Array, k: number, normTopK: boolean): { ids: number[]; weights: number[] } {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  const ids = order.slice(0, k);
  const weights = ids.map((e) => probs[e]);
  if (normTopK) {
    const sum = weights.reduce((s, w) => s + w, 0);
    for (let i = 0; i < weights.length; i++) weights[i] /= sum;
  }
  return { ids, weights };
}

/** Hugging Face tensor names of layer `l` (Llama layout; MoE names by family). */
export function hfNames(config: ModelConfig, l: number) {
  const p = `model.layers.${l}`;
  const moePrefix = config.family === 'mixtral' ? `${p}.block_sparse_moe` : `${p}.mlp`;
  const expert = (e: number) =>
    config.family === 'mixtral'
      ? { gate: `${moePrefix}.experts.${e}.w1.weight`, up: `${moePrefix}.experts.${e}.w3.weight`, down: `${moePrefix}.experts.${e}.w2.weight` }
      : { gate: `${moePrefix}.experts.${e}.gate_proj.weight`, up: `${moePrefix}.experts.${e}.up_proj.weight`, down: `${moePrefix}.experts.${e}.down_proj.weight` };
  return {
    inputNorm: `${p}.input_layernorm.weight`,
    postNorm: `${p}.post_attention_layernorm.weight`,
    q: `${p}.self_attn.q_proj`,
    k: `${p}.self_attn.k_proj`,
    v: `${p}.self_attn.v_proj`,
    o: `${p}.self_attn.o_proj.weight`,
    qNorm: `${p}.self_attn.q_norm.weight`,
    kNorm: `${p}.self_attn.k_norm.weight`,
    mlp: { gate: `${p}.mlp.gate_proj.weight`, up: `${p}.mlp.up_proj.weight`, down: `${p}.mlp.down_proj.weight` },
    router: `${moePrefix}.gate.weight`,
    expert,
    shared: { gate: `${p}.mlp.shared_expert.gate_proj.weight`, up: `${p}.mlp.shared_expert.up_proj.weight`, down: `${p}.mlp.shared_expert.down_proj.weight` },
    sharedGate: `${p}.mlp.shared_expert_gate.weight`,
  };
}

export class ReferenceModel {
  private readonly cache = new Map<string, Float32Array>();
  private readonly invFreq: Float64Array;

  constructor(
    readonly config: ModelConfig,
    private readonly weights: (hfName: string) => Float32Array,
  ) {
    this.invFreq = ropeInvFreq(config);
  }

  newCache(): RefKvCache {
    return new RefKvCache(this.config.layers);
  }

  /** Logits (V) of the last of `tokenIds`, which continue the sequence held in `cache`. */
  forward(tokenIds: number[], cache: RefKvCache): Float32Array {
    const all = this.forwardAll(tokenIds, cache);
    return all[all.length - 1];
  }

  /** Logits (V) of every position of `tokenIds`, appended to `cache`. */
  forwardAll(tokenIds: number[], cache: RefKvCache): Float32Array[] {
    const c = this.config;
    if (tokenIds.length === 0) throw new Error('forward needs at least one token');
    const p0 = cache.length;
    if (p0 + tokenIds.length > c.maxPositions) {
      throw new Error(`sequence of ${p0 + tokenIds.length} tokens exceeds the model's ${c.maxPositions} positions`);
    }
    const embed = this.w('model.embed_tokens.weight', c.vocabSize * c.hidden);
    const xs = tokenIds.map((id) => {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new Error(`token id ${id} is outside the vocabulary 0..${c.vocabSize - 1}`);
      return Float64Array.from(embed.subarray(id * c.hidden, (id + 1) * c.hidden));
    });
    for (let l = 0; l < c.layers; l++) {
      this.attention(l, xs, p0, cache);
      const names = hfNames(c, l);
      for (const x of xs) {
        const y = this.mlp(l, rmsNorm(x, this.w(names.postNorm, c.hidden), c.rmsEps));
        for (let i = 0; i < c.hidden; i++) x[i] += y[i];
      }
    }
    const finalNorm = this.w('model.norm.weight', c.hidden);
    const head = c.tieEmbeddings ? embed : this.w('lm_head.weight', c.vocabSize * c.hidden);
    return xs.map((x) => Float32Array.from(linear(rmsNorm(x, finalNorm, c.rmsEps), head, c.vocabSize)));
  }

  /** Self-attention of layer l for the chunk xs (positions p0…), residual added in place. */
  private attention(l: number, xs: Float64Array[], p0: number, cache: RefKvCache): void {
    const c = this.config;
    const n = hfNames(c, l);
    const D = c.headDim;
    const qDim = c.heads * D;
    const kvDim = c.kvHeads * D;
    const qs: Float64Array[] = [];
    for (let j = 0; j < xs.length; j++) {
      const h = rmsNorm(xs[j], this.w(n.inputNorm, c.hidden), c.rmsEps);
      const q = linear(h, this.w(`${n.q}.weight`, qDim * c.hidden), qDim, this.bias(`${n.q}.bias`, qDim));
      const k = linear(h, this.w(`${n.k}.weight`, kvDim * c.hidden), kvDim, this.bias(`${n.k}.bias`, kvDim));
      const v = linear(h, this.w(`${n.v}.weight`, kvDim * c.hidden), kvDim, this.bias(`${n.v}.bias`, kvDim));
      if (c.qkNorm) {
        this.qkNormInPlace(q, n.qNorm, c.heads);
        this.qkNormInPlace(k, n.kNorm, c.kvHeads);
      }
      for (let hd = 0; hd < c.heads; hd++) ropeInPlace(q, hd * D, p0 + j, this.invFreq);
      for (let g = 0; g < c.kvHeads; g++) ropeInPlace(k, g * D, p0 + j, this.invFreq);
      qs.push(q);
      cache.k[l].push(k);
      cache.v[l].push(v);
    }
    const keys = cache.k[l];
    const vals = cache.v[l];
    const group = c.heads / c.kvHeads;
    const scale = 1 / Math.sqrt(D);
    const wo = this.w(n.o, c.hidden * qDim);
    for (let j = 0; j < xs.length; j++) {
      const visible = p0 + j + 1; // causal: position p0+j sees 0..p0+j
      const out = new Float64Array(qDim);
      const scores = new Float64Array(visible);
      for (let hd = 0; hd < c.heads; hd++) {
        const g = Math.floor(hd / group);
        for (let t = 0; t < visible; t++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += qs[j][hd * D + d] * keys[t][g * D + d];
          scores[t] = s * scale;
        }
        softmaxInPlace(scores);
        for (let t = 0; t < visible; t++) {
          for (let d = 0; d < D; d++) out[hd * D + d] += scores[t] * vals[t][g * D + d];
        }
      }
      const o = linear(out, wo, c.hidden);
      for (let i = 0; i < c.hidden; i++) xs[j][i] += o[i];
    }
  }

  /**
   * q/k RMSNorm before RoPE. A (D) weight normalises each head (Qwen3); a
   * weight as long as the projection normalises it whole (OLMoE).
   */
  private qkNormInPlace(x: Float64Array, name: string, heads: number): void {
    const D = this.config.headDim;
    let w = this.cache.get(name);
    if (!w) {
      w = this.weights(name);
      if (w.length !== D && w.length !== x.length) {
        throw new Error(`weight ${name} has ${w.length} values, expected ${D} (per head) or ${x.length} (whole projection)`);
      }
      this.cache.set(name, w);
    }
    if (w.length === x.length) return rmsNormInPlace(x, w, this.config.rmsEps);
    for (let h = 0; h < heads; h++) rmsNormInPlace(x, w, this.config.rmsEps, h * D);
  }

  /** Dense SwiGLU or MoE block on one normalised token h (H). */
  private mlp(l: number, h: Float64Array): Float64Array {
    const c = this.config;
    const n = hfNames(c, l);
    const H = c.hidden;
    const moe = c.moe;
    if (!moe) {
      return swiglu(h, this.w(n.mlp.gate, c.ffn * H), this.w(n.mlp.up, c.ffn * H), this.w(n.mlp.down, H * c.ffn), c.ffn);
    }
    const probs = linear(h, this.w(n.router, moe.experts * H), moe.experts);
    softmaxInPlace(probs);
    const { ids, weights } = routeTopK(probs, moe.topK, moe.normTopK);
    const y = new Float64Array(H);
    const F = moe.expertFfn;
    ids.forEach((e, i) => {
      const en = n.expert(e);
      const ye = swiglu(h, this.w(en.gate, F * H), this.w(en.up, F * H), this.w(en.down, H * F), F);
      for (let d = 0; d < H; d++) y[d] += weights[i] * ye[d];
    });
    if (moe.sharedExpertFfn > 0) {
      const S = moe.sharedExpertFfn;
      const ys = swiglu(h, this.w(n.shared.gate, S * H), this.w(n.shared.up, S * H), this.w(n.shared.down, H * S), S);
      const gate = sigmoid(linear(h, this.w(n.sharedGate, H), 1)[0]);
      for (let d = 0; d < H; d++) y[d] += gate * ys[d];
    }
    return y;
  }

  /** Weight by HF name, fetched once, with its element count checked. */
  private w(name: string, expected: number): Float32Array {
    let t = this.cache.get(name);
    if (!t) {
      t = this.weights(name);
      if (t.length !== expected) throw new Error(`weight ${name} has ${t.length} values, expected ${expected}`);
      this.cache.set(name, t);
    }
    return t;
  }

  private bias(name: string, expected: number): Float32Array | undefined {
    return this.config.qkvBias ? this.w(name, expected) : undefined;
  }
}

/**
 * Greedy decoding with the reference: prefill `promptIds`, then take the
 * argmax (ties → lowest id) `maxNew` times. logits[i] is the distribution
 * token i was chosen from. Stops early after emitting one of `eosIds`.
 */
export function referenceGreedy(
  model: ReferenceModel,
  promptIds: number[],
  maxNew: number,
  eosIds: number[] = [],
): { tokens: number[]; logits: Float32Array[] } {
  const cache = model.newCache();
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  let next = promptIds;
  for (let i = 0; i < maxNew; i++) {
    const l = model.forward(next, cache);
    const id = argmax(l);
    tokens.push(id);
    logits.push(l);
    if (eosIds.includes(id)) break;
    next = [id];
  }
  return { tokens, logits };
}
