/**
 * The normalised description of a transformer that every other part of the
 * engine reads. Parsed once from a Hugging Face `config.json` (see config.ts)
 * or produced by a synthetic preset (see presets.ts); never from anything else.
 */

/** Architectures ParaLab can execute (or load as data, for MoE before EP lands). */
export type ArchFamily = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'olmoe';

/** Storage dtype of the weights on disk. Compute is fp32 on the CPU provider. */
export type WeightDtype = 'float32' | 'float16' | 'bfloat16';

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'linear'; factor: number };

export interface MoeConfig {
  experts: number;
  topK: number;
  /** intermediate size of one routed expert */
  expertFfn: number;
  /** renormalise the top-k routing weights so they sum to 1 (Mixtral: always; Qwen: norm_topk_prob) */
  normTopK: boolean;
  /** Qwen2-MoE shared expert (intermediate size), gated by sigmoid(x·w); 0 when absent */
  sharedExpertFfn: number;
}

export interface ModelConfig {
  family: ArchFamily;
  /** config.json `architectures[0]`, e.g. "LlamaForCausalLM" */
  hfArchitecture: string;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** dense MLP intermediate size (0 for pure-MoE layers) */
  ffn: number;
  rmsEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositions: number;
  tieEmbeddings: boolean;
  /** Qwen2: bias on q/k/v projections */
  qkvBias: boolean;
  /** Qwen3 / OLMoE: RMSNorm over each head of q and k before RoPE */
  qkNorm: boolean;
  /**
   * What the q/k RMSNorm spans when `qkNorm`: 'head' (Qwen3, Qwen3-MoE: one
   * weight of [headDim] applied per head) or 'projection' (OLMoE: one norm
   * over the whole q projection, weight [heads*headDim], and k, [kvHeads*headDim]).
   * Absent means 'head'.
   */
  qkNormScope?: 'head' | 'projection';
  moe: MoeConfig | null;
  dtype: WeightDtype;
  bosTokenId: number | null;
  /** every id that ends generation (config.json + generation_config.json) */
  eosTokenIds: number[];
}

/** Parameter count implied by a config (embeddings counted once when tied). */
export function paramCount(c: ModelConfig): number {
  const attn = c.hidden * c.heads * c.headDim * 2 + c.hidden * c.kvHeads * c.headDim * 2;
  const bias = c.qkvBias ? (c.heads + 2 * c.kvHeads) * c.headDim : 0;
  const qk = !c.qkNorm ? 0 : c.qkNormScope === 'projection' ? (c.heads + c.kvHeads) * c.headDim : 2 * c.headDim;
  let mlp = 3 * c.hidden * c.ffn;
  if (c.moe) {
    mlp = c.moe.experts * 3 * c.hidden * c.moe.expertFfn + c.hidden * c.moe.experts;
    if (c.moe.sharedExpertFfn > 0) mlp += 3 * c.hidden * c.moe.sharedExpertFfn + c.hidden;
  }
  const perLayer = attn + bias + qk + mlp + 2 * c.hidden;
  const emb = c.vocabSize * c.hidden * (c.tieEmbeddings ? 1 : 2);
  return perLayer * c.layers + emb + c.hidden;
}
