/**
 * Per-rank memory that is accounted from shapes rather than measured: the KV
 * cache a rank holds and the peak of its activations during one step. (The
 * weights come from the rank itself — bytes it loaded — and the RSS peak is
 * measured by the cluster; both are recorded beside these.)
 *
 * Why accounted: onnxruntime's arena does not report per-tensor peaks, and a
 * rank's RSS mixes weights, arena slack and the runtime itself. The formulas
 * are stated here so a reader can check them by hand; all tensors are fp32
 * (4 bytes) in the executing graphs, whatever the weights' dtype on disk.
 */
import { maxLocalHeads } from '../engine/parallel/tp/layout';

export const F32 = 4;

/** The shape facts of one rank's shard that the formulas need. */
export interface ShardShape {
  /** layers this rank holds, [start, end) */
  layers: [number, number];
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** dense FFN width, or the routed expert width × top-k for MoE (what one token touches) */
  ffn: number;
  vocab: number;
  /** tensor-parallel degree of the rank's replica */
  tp: number;
  /** the rank holds the LM head (last pipeline stage) */
  head: boolean;
  /** sequence-parallel degree (Ulysses / ring / USP: a prefill's tokens split over sp ranks) */
  sp?: number;
  /** Megatron sequence parallelism on the tp ranks (norm regions hold S/tp tokens) */
  megatronSp?: boolean;
}

/**
 * Query heads / KV slots on the largest tp rank, from the engine's own split
 * (parallel/tp/layout.ts): KV heads replicated when tp exceeds them, and
 * repeated on a rank whose heads an uneven split cuts across groups.
 */
export function localHeads(s: Pick<ShardShape, 'heads' | 'kvHeads' | 'tp'>): { q: number; kv: number } {
  return maxLocalHeads(s.heads, s.kvHeads, s.tp);
}

/**
 * KV cache bytes on one rank holding `seqs` sequences of `tokens` positions:
 *   2 (K and V) × layers_local × kv_heads_local × head_dim × tokens × seqs × 4 bytes
 */
export function kvCacheBytes(s: ShardShape, seqs: number, tokens: number): number {
  const layers = s.layers[1] - s.layers[0];
  return 2 * layers * localHeads(s).kv * s.headDim * tokens * seqs * F32;
}

/**
 * Peak activation bytes of one step on one rank: B sequences, S new tokens
 * each, attending over T positions (T = past + S). The largest of the tensors
 * alive at once in any one segment (q = local query heads, kv = local KV heads,
 * d = head dim, H = hidden, F = FFN width / tp, V = vocab / tp, and
 * s = S / sp, the tokens of this rank under sequence parallelism):
 *   attention block: x + normed x + o-proj out   3·B·s·H
 *                    q, k, v                      B·s·(q + 2·kv)·d
 *                    scores (softmax probs)       B·q·S·T / sp
 *                    attention output             B·s·q·d
 *   MLP block:       x + normed x + down out      3·B·s·H
 *                    gate, up, act(gate)·up       3·B·s·F
 *   LM head:         last position only           B·H + B·V
 * Sequence parallelism splits a prefill (S > 1) only; decode steps are not
 * split. Scores / sp: Ulysses holds q/sp heads over the whole sequence, ring
 * S/sp queries against one KV block at a time (so ring is bounded above by this).
 * Megatron SP keeps the norm regions at S/tp tokens: x + normed x count
 * 2·B·S·H/tp, the gathered input B·S·H in full.
 * peak = 4 bytes × max(attention, MLP, head). Ranks without layers (none today) count the head only.
 */
export function activationPeakBytes(s: ShardShape, B: number, S: number, T: number): number {
  const { q, kv } = localHeads(s);
  const d = s.headDim;
  const F = Math.ceil(s.ffn / s.tp);
  const V = Math.ceil(s.vocab / s.tp);
  const sp = S > 1 ? Math.max(1, s.sp ?? 1) : 1;
  const Sl = Math.ceil(S / sp);
  const resid = s.megatronSp && s.tp > 1 ? B * S * s.hidden * (1 + 2 / s.tp) : 3 * B * Sl * s.hidden;
  const hasLayers = s.layers[1] > s.layers[0];
  const attn = hasLayers ? resid + B * Sl * (q + 2 * kv) * d + (B * q * S * T) / sp + B * Sl * q * d : 0;
  const mlp = hasLayers ? resid + 3 * B * Sl * F : 0;
  const head = s.head ? B * s.hidden + B * V : 0;
  return F32 * Math.max(attn, mlp, head);
}

/** The steps a workload runs, for the peak: a prefill of B×L, then decode steps of B×1 up to T = L + O. */
export function workloadActivationPeak(s: ShardShape, B: number, promptLen: number, outputLen: number): number {
  const prefill = activationPeakBytes(s, B, promptLen, promptLen);
  const lastDecode = outputLen > 1 ? activationPeakBytes(s, B, 1, promptLen + outputLen - 1) : 0;
  return Math.max(prefill, lastDecode);
}
