/**
 * Ragged batches for continuous batching: rows of different lengths in one
 * batch, and the repacking that JOIN / LEAVE need (rank/serving-pool.ts
 * explains the layouts).
 */
import { ort } from '../runtime/ort';
import { BatchState } from '../runtime/batch';
import type { Executor } from '../runtime/executor';
import { isBlock } from '../runtime/block';
import type { MicroBatches } from '../parallel/pp/pipeline';
import { splitEven } from '../parallel/split';

export type KvLayout = 'left' | 'right';

/** Tokens per row of a batch (a plain batch: every row has `length`). */
export function rowLens(st: BatchState): number[] {
  return st.lens ?? new Array<number>(st.batch).fill(st.length);
}

/**
 * A new batch made of rows taken from other batches, in order, repacked to
 * the width of its longest row. Returns null when no row is taken.
 */
export function repack(parts: { state: BatchState; rows: number[] }[], layout: KvLayout): BatchState | null {
  const picks: { state: BatchState; row: number; len: number }[] = [];
  for (const p of parts) {
    const lens = rowLens(p.state);
    for (const r of p.rows) picks.push({ state: p.state, row: r, len: lens[r] });
  }
  if (picks.length === 0) return null;
  for (const p of parts) if (p.state.blocks.size > 0) throw new Error('a batch whose blocks keep their own state cannot be repacked');
  const B = picks.length;
  const W = Math.max(...picks.map((p) => p.len));
  const out = new BatchState(B);
  for (const layer of parts[0].state.kv.keys()) {
    const first = parts[0].state.kv.get(layer)!;
    const [, H, , D] = first.k.dims as number[];
    const k = new Float32Array(B * H * W * D);
    const v = new Float32Array(B * H * W * D);
    picks.forEach((p, b) => {
      const src = p.state.kv.get(layer);
      if (!src) throw new Error(`layer ${layer} has no KV cache in one of the batches being joined`);
      const w = (src.k.dims as number[])[2];
      const sk = src.k.data as Float32Array;
      const sv = src.v.data as Float32Array;
      const from = layout === 'left' ? w - p.len : 0;
      const to = layout === 'left' ? W - p.len : 0;
      for (let h = 0; h < H; h++) {
        const s = ((p.row * H + h) * w + from) * D;
        const d = ((b * H + h) * W + to) * D;
        k.set(sk.subarray(s, s + p.len * D), d);
        v.set(sv.subarray(s, s + p.len * D), d);
      }
    });
    out.kv.set(layer, { k: new ort.Tensor('float32', k, [B, H, W, D]), v: new ort.Tensor('float32', v, [B, H, W, D]) });
  }
  out.length = W;
  out.lens = picks.map((p) => p.len);
  return out;
}

/** How this executor's attention keeps a ragged batch; null when it cannot (blocks with their own state). */
export function raggedLayout(exec: Executor): { layout: KvLayout | null; reason: string | null } {
  if (exec.items.some(isBlock)) return { layout: null, reason: 'this plan runs blocks (sequence-parallel attention or MoE experts) that keep their own per-batch state' };
  const kernel = exec.segments.find((s) => s.kernel)?.kernel ?? 'gqa';
  return { layout: kernel === 'gqa' ? 'right' : 'left', reason: null };
}

/** Every row of a running batch, in order, as (state, row in it). */
export function rowsOf(mb: MicroBatches | null): { state: BatchState; rows: number[] }[] {
  if (!mb) return [];
  return mb.states.flatMap((state) => Array.from({ length: state.batch }, (_, r) => ({ state, rows: [r] })));
}

/**
 * The running batch made of `rows` (in order), split like `microBatches`
 * does into contiguous ranges, one repacked ragged state per range, so under
 * PP decode steps fill the pipeline with micro-batches too.
 */
export function regroup(rows: { state: BatchState; rows: number[] }[], layout: KvLayout, micro: number): MicroBatches | null {
  const flat = rows.flatMap((p) => p.rows.map((r) => ({ state: p.state, rows: [r] })));
  const B = flat.length;
  if (B === 0) return null;
  const m = Math.max(1, Math.min(micro, B));
  const ranges = Array.from({ length: m }, (_, i) => splitEven(B, m, i));
  return { ranges, states: ranges.map(([a, b]) => repack(flat.slice(a, b), layout)!) };
}
