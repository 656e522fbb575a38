/**
 * The rank side of continuous batching (host side: host/serving.ts).
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
 * membership changes (rank/ragged.ts).
 */
import type { Executor } from '../runtime/executor';
import type { SegmentTiming } from '../runtime/stream';
import { microBatches } from '../parallel/pp/pipeline';
import type { MicroBatches } from '../parallel/pp/pipeline';
import { Rng } from '../sample/rng';
import { sampleToken } from '../sample/sampler';
import type { PoolOpened, RankSpan, SeqSampling, StepResult } from './protocol';
import { runStage } from './stage';
import type { StageLinks, StageTimes } from './stage';
import { raggedLayout, regroup, rowsOf } from './ragged';
import type { KvLayout } from './ragged';

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

/** A rank's serving pools, one running ragged batch each. */
export class ServingPools {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly ctx: ServeCtx) {}

  /** micro: pipeline micro-batches of the pool's steps (default the spec's; 1 when the host overlaps several pools) */
  open(id: string, micro = this.ctx.micro): PoolOpened {
    const { layout, reason } = raggedLayout(this.ctx.exec);
    if (layout) this.pools.set(id, { layout, micro: Math.max(1, micro), mb: null, ids: [], sampling: [], rngs: [], history: [] });
    return { ragged: layout !== null, reason };
  }

  close(id: string): void {
    this.pools.delete(id);
  }

  /** Finished rows leave; `ids` are prefilled as a batch of their own (equal prompt length S) and join the running batch. */
  async prefill(id: string, m: { leave: number[]; ids: number[]; sampling: SeqSampling[]; S: number; tokens: Int32Array; trace?: boolean }): Promise<StepResult> {
    const { ctx } = this;
    const p = this.pool(id);
    leave(p, m.leave);
    const n = m.ids.length;
    if (m.tokens.length !== n * m.S) throw new Error(`serve-prefill expects ${n}×${m.S} token ids, got ${m.tokens.length}`);
    const times: StageTimes = { computeMs: 0, commMs: 0, bubbleMs: 0 };
    const mb = microBatches(ctx.exec, n, p.micro);
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
    const tokens = this.sample(p, logits, m.ids.map((_, i) => base + i));
    return { tokens, logits: null, ...times, kvBytes: kvBytesOf(p.mb), spans: m.trace ? spansOf(timings) : undefined };
  }

  /** Finished rows leave; then one decode step (one new token per row) for every running row. */
  async step(id: string, m: { leave: number[]; tokens: Int32Array; trace?: boolean }): Promise<StepResult> {
    const { ctx } = this;
    const p = this.pool(id);
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
    const tokens = this.sample(p, logits, p.ids.map((_, r) => r));
    return { tokens, logits: null, ...times, kvBytes: kvBytesOf(p.mb), spans: m.trace ? spansOf(timings) : undefined };
  }

  private pool(id: string): Pool {
    const p = this.pools.get(id);
    if (!p) throw new Error(`unknown serving pool ${id}`);
    return p;
  }

  private sample(p: Pool, logits: Float32Array | null, rows: number[]): number[] | null {
    if (!logits || !this.ctx.sampler) return null;
    const V = this.ctx.vocab;
    return rows.map((r, i) => sampleToken(logits.subarray(i * V, (i + 1) * V), p.sampling[r].params, p.history[r], p.rngs[r]));
  }
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

/** Step timings as trace spans (µs since the epoch, as rank/spans.ts gives them). */
function spansOf(timings: SegmentTiming[]): RankSpan[] {
  return timings.map((t) => ({ name: t.segment, cat: t.cat ?? 'compute', ts: (performance.timeOrigin + t.start) * 1000, dur: t.ms * 1000 }));
}
