/**
 * The rank side of continuous batching (host side: serving.ts).
 *
 * A rank keeps, per serving pool, ONE running batch whose rows are requests
 * of different lengths (a ragged batch): `BatchState.lens[b]` tokens in row
 * b, the KV tensors (B, kv, W, D) as wide as the longest row, W = max lens.
 * How the shorter rows are padded depends on the attention kernel:
 *   gqa  RIGHT padding: row b holds its tokens in [0, lens[b]). onnxruntime's
 *        GroupQueryAttention takes per-row seqlens_k = lens[b] + S − 1 and
 *        writes row b's new tokens at lens[b], attending to [0, lens[b]+S)
 *        only (pinned down by tests/engine/serving-gqa-probe.test.ts).
 *   ops  LEFT padding: the standard-op kernel appends new keys with a Concat
 *        at W for every row, so row b holds its tokens in [W − lens[b], W);
 *        the holes [0, W − lens[b]) are masked by a per-row additive mask
 *        (`row_mask`, (B,1,S,T)), and RoPE uses per-row positions lens[b]+i
 *        (keys are cached already rotated, so a slot's index never matters).
 * Either way a decode step is one batched forward for all rows, and after it
 * the layout still holds (W and every lens[b] grew by S).
 *
 * JOIN (a prefilled batch enters the running one) and LEAVE (finished rows
 * drop out) repack the KV into new tensors: the only copies, made only when
 * membership changes.
 */
import { ort } from './runtime/ort';
import { BatchState } from './runtime/executor';
import type { Executor } from './runtime/executor';
import { microBatches, runStage } from './worker/stage';
import type { MicroBatches, StageLinks, StageTimes } from './worker/stage';
import { splitEven } from './parallel/split';
import { Rng } from './sample/rng';
import { sampleToken } from './sample/sampler';
import type { RankSpan, SeqSampling, StepResult } from './worker/protocol';
import type { SegmentTiming } from './runtime/executor';

export { raggedAttentionFeeds } from './serving-feeds';

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
  if (exec.items.some((i) => 'kind' in i && i.kind === 'block')) return { layout: null, reason: 'this plan runs blocks (sequence-parallel attention or MoE experts) that keep their own per-batch state' };
  const kernel = exec.segments.find((s) => s.kernel)?.kernel ?? 'gqa';
  return { layout: kernel === 'gqa' ? 'right' : 'left', reason: null };
}

interface Pool {
  layout: KvLayout;
  /** pipeline micro-batches the running batch is split into (1 without PP) */
  micro: number;
  /** the running batch: contiguous row ranges, one ragged state each (null when empty) */
  mb: MicroBatches | null;
  ids: number[];
  sampling: SeqSampling[];
  rngs: Rng[];
  /** prompt + generated ids per row, for the repetition penalty */
  history: number[][];
}

/** What a rank brings to a serving step. */
export interface ServeCtx {
  exec: Executor;
  links: StageLinks;
  vocab: number;
  micro: number;
  sampler: boolean;
}

const pools = new Map<string, Pool>();

export function poolOpen(ctx: ServeCtx, id: string): { ragged: boolean; reason: string | null } {
  const { layout, reason } = raggedLayout(ctx.exec);
  if (layout) pools.set(id, { layout, micro: Math.max(1, ctx.micro), mb: null, ids: [], sampling: [], rngs: [], history: [] });
  return { ragged: layout !== null, reason };
}

export function poolClose(id: string): void {
  pools.delete(id);
}

function pool(id: string): Pool {
  const p = pools.get(id);
  if (!p) throw new Error(`unknown serving pool ${id}`);
  return p;
}

/** Every row of a running batch, in order, as (state, row in it). */
function rowsOf(mb: MicroBatches | null): { state: BatchState; rows: number[] }[] {
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

function kvBytesOf(mb: MicroBatches | null): number {
  return mb ? mb.states.reduce((a, st) => a + st.kvBytes(), 0) : 0;
}

/** Drop the rows of requests `ids` (their KV, sampling state, history). */
function leave(p: Pool, ids: number[]): void {
  if (ids.length === 0) return;
  const keep: number[] = [];
  p.ids.forEach((id, r) => {
    if (!ids.includes(id)) keep.push(r);
  });
  if (keep.length + ids.length !== p.ids.length) throw new Error(`serving pool: leaving requests ${ids.join(',')} that are not all running`);
  p.mb = regroup(rowsOf(p.mb).filter((_, r) => keep.includes(r)), p.layout, p.micro);
  p.ids = keep.map((r) => p.ids[r]);
  p.sampling = keep.map((r) => p.sampling[r]);
  p.rngs = keep.map((r) => p.rngs[r]);
  p.history = keep.map((r) => p.history[r]);
}

function sample(ctx: ServeCtx, p: Pool, logits: Float32Array | null, rows: number[]): number[] | null {
  if (!logits || !ctx.sampler) return null;
  const V = ctx.vocab;
  return rows.map((r, i) => sampleToken(logits.subarray(i * V, (i + 1) * V), p.sampling[r].params, p.history[r], p.rngs[r]));
}

/** Finished rows leave; `ids` are prefilled as a batch of their own (equal prompt length S) and join the running batch. */
export async function poolPrefill(ctx: ServeCtx, id: string, m: { leave: number[]; ids: number[]; sampling: SeqSampling[]; S: number; tokens: Int32Array; trace?: boolean }): Promise<StepResult> {
  const p = pool(id);
  leave(p, m.leave);
  const n = m.ids.length;
  if (m.tokens.length !== n * m.S) throw new Error(`serve-prefill expects ${n}×${m.S} token ids, got ${m.tokens.length}`);
  const times: StageTimes = { computeMs: 0, commMs: 0, bubbleMs: 0 };
  const mb = microBatches(ctx.exec, n, ctx.micro);
  const timings: SegmentTiming[] = [];
  const logits = await runStage(ctx.exec, mb, m.S, m.tokens, ctx.links, ctx.vocab, times, timings);
  const t = performance.now();
  const joined = regroup([...rowsOf(p.mb), ...rowsOf(mb)], p.layout, p.micro);
  times.computeMs += performance.now() - t;
  timings.push({ segment: 'join (KV repack)', start: t, ms: performance.now() - t });
  const base = p.ids.length;
  p.mb = joined;
  p.ids.push(...m.ids);
  p.sampling.push(...m.sampling);
  p.rngs.push(...m.sampling.map((s) => new Rng(s.seed)));
  p.history.push(...m.ids.map((_, i) => Array.from(m.tokens.subarray(i * m.S, (i + 1) * m.S))));
  const tokens = sample(ctx, p, logits, m.ids.map((_, i) => base + i));
  return { tokens, logits: null, ...times, kvBytes: kvBytesOf(p.mb), spans: m.trace ? spansOf(timings) : undefined };
}

/** Finished rows leave; then one decode step (one new token per row) for every running row. */
export async function poolStep(ctx: ServeCtx, id: string, m: { leave: number[]; tokens: Int32Array; trace?: boolean }): Promise<StepResult> {
  const p = pool(id);
  const t = performance.now();
  leave(p, m.leave);
  const repackMs = performance.now() - t;
  const timings: SegmentTiming[] = m.leave.length > 0 ? [{ segment: 'leave (KV repack)', start: t, ms: repackMs }] : [];
  const B = p.ids.length;
  if (!p.mb || B === 0) throw new Error('serve-step on an empty serving pool');
  if (m.tokens.length !== B) throw new Error(`serve-step expects ${B} token ids (one per running request), got ${m.tokens.length}`);
  const times: StageTimes = { computeMs: repackMs, commMs: 0, bubbleMs: 0 };
  const logits = await runStage(ctx.exec, p.mb, 1, m.tokens, ctx.links, ctx.vocab, times, timings);
  for (let r = 0; r < B; r++) p.history[r].push(m.tokens[r]);
  const tokens = sample(ctx, p, logits, p.ids.map((_, r) => r));
  return { tokens, logits: null, ...times, kvBytes: kvBytesOf(p.mb), spans: m.trace ? spansOf(timings) : undefined };
}

/** Step timings as trace spans (µs since the epoch, as rank.ts gives them). */
function spansOf(timings: SegmentTiming[]): RankSpan[] {
  return timings.map((t) => ({ name: t.segment, cat: t.cat ?? 'compute', ts: (performance.timeOrigin + t.start) * 1000, dur: t.ms * 1000 }));
}
