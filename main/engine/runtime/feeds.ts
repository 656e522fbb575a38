/**
 * The per-step inputs attention needs, built once per step and shared by all
 * segments of a rank:
 *   gqa  GroupQueryAttention takes lengths: seqlens_k (B) = total − 1, total_len ()
 *   ops  the standard-op kernel takes absolute positions (B,S) and an additive
 *        causal mask (S, P+S) where query i sees keys j ≤ P + i; a ragged
 *        batch (continuous batching) adds a per-row mask `row_mask`
 *        (B,1,S,T) hiding each shorter row's left padding
 * (rank/serving-pool.ts explains the ragged layouts).
 */
import { ort } from './ort';

export type AttentionFeeds = (kernel: 'gqa' | 'ops') => Record<string, ort.Tensor>;

/** A plain batch: every row has `past` tokens cached and S new ones. */
export function attentionFeeds(B: number, S: number, past: number): AttentionFeeds {
  const cache = new Map<string, Record<string, ort.Tensor>>();
  return (kernel) => {
    let f = cache.get(kernel);
    if (f) return f;
    const total = past + S;
    if (kernel === 'gqa') {
      f = {
        seqlens_k: new ort.Tensor('int32', new Int32Array(B).fill(total - 1), [B]),
        total_len: new ort.Tensor('int32', Int32Array.from([total]), []),
      };
    } else {
      const pos = new BigInt64Array(B * S);
      for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) pos[b * S + i] = BigInt(past + i);
      const mask = new Float32Array(S * total);
      for (let i = 0; i < S; i++) mask.fill(-Infinity, i * total + past + i + 1, (i + 1) * total);
      f = { positions: new ort.Tensor('int64', pos, [B, S]), mask: new ort.Tensor('float32', mask, [S, total]) };
    }
    cache.set(kernel, f);
    return f;
  };
}

/**
 * A ragged step: S new tokens per row, row b holding lens[b] tokens, cache
 * width P = max lens. What attentionFeeds gives a plain batch, per row.
 */
export function raggedAttentionFeeds(lens: number[], S: number, P: number): AttentionFeeds {
  const B = lens.length;
  const T = P + S;
  const cache = new Map<string, Record<string, ort.Tensor>>();
  return (kernel) => {
    let f = cache.get(kernel);
    if (f) return f;
    if (kernel === 'gqa') {
      f = {
        seqlens_k: new ort.Tensor('int32', Int32Array.from(lens, (l) => l + S - 1), [B]),
        total_len: new ort.Tensor('int32', Int32Array.from([T]), []),
      };
    } else {
      const pos = new BigInt64Array(B * S);
      for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) pos[b * S + i] = BigInt(lens[b] + i);
      const mask = new Float32Array(S * T);
      for (let i = 0; i < S; i++) mask.fill(-Infinity, i * T + P + i + 1, (i + 1) * T);
      const rowMask = new Float32Array(B * S * T);
      for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) rowMask.fill(-Infinity, (b * S + i) * T, (b * S + i) * T + P - lens[b]);
      f = {
        positions: new ort.Tensor('int64', pos, [B, S]),
        mask: new ort.Tensor('float32', mask, [S, T]),
        row_mask: new ort.Tensor('float32', rowMask, [B, 1, S, T]),
      };
    }
    cache.set(kernel, f);
    return f;
  };
}

/** The row mask of a plain batch: (1,1,S,1) zeros, which broadcast once tiled over a query group. */
const noRowMasks = new Map<number, ort.Tensor>();
export function noRowMask(S: number): ort.Tensor {
  let t = noRowMasks.get(S);
  if (!t) noRowMasks.set(S, (t = new ort.Tensor('float32', new Float32Array(S), [1, 1, S, 1])));
  return t;
}
