/**
 * The attention inputs of a ragged decode/prefill step for continuous
 * batching (serving-kv.ts explains the layouts): what executor.ts's
 * attentionFeeds gives a plain batch, per row. A module of its own (only
 * onnxruntime) so the executor can use it without an import cycle.
 */
import { ort } from './runtime/ort';

/**
 * Attention inputs of one ragged step (S new tokens per row, cache width P =
 * max lens): what executor.ts's attentionFeeds gives a plain batch, per row.
 */
export function raggedAttentionFeeds(lens: number[], S: number, P: number) {
  const B = lens.length;
  const T = P + S;
  const cache = new Map<string, Record<string, ort.Tensor>>();
  return (kernel: 'gqa' | 'ops'): Record<string, ort.Tensor> => {
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
