/**
 * Runs one rank's segments for a batch of sequences that advance together,
 * keeping their KV cache (the layers / heads this rank owns) between steps.
 *
 *   step(ids or (x, delta), S) → logits (B,V) on the last stage, else (x, delta) (B,S,H)
 *
 * Between two segments the plan's `boundary` hook runs (TP: all-reduce of the
 * sublayer output in place); the executor itself never communicates. Some
 * items are not one ONNX session but a Block (runtime/block.ts): a piece of
 * the layer whose computation is interleaved with collectives.
 */
import { createSession, ort } from './ort';
import type { SessionConfig } from './ort';
import { pastK, pastV, presentK, presentV } from '../graph/segments';
import type { BuiltSegment } from '../graph/segments';
import { attentionFeeds, noRowMask, raggedAttentionFeeds } from './feeds';
import { BatchState } from './batch';
import { isBlock } from './block';
import type { ExecItem, StepStats } from './block';
import type { SegmentTiming, StepInput, StepOutput, StreamTensors } from './stream';

/** Called after a segment whose output crosses a collective; may rewrite the stream in place. */
export type BoundaryHook = (seg: BuiltSegment, index: number, stream: StreamTensors) => Promise<void> | void;

export interface StepOptions {
  /** how far the sequence advances (default S; under SP a rank runs a shard of the step's tokens) */
  advance?: number;
  /** handed to blocks as BlockStep.plan */
  plan?: unknown;
  /** handed to blocks as BlockStep.stats */
  stats?: StepStats;
}

export class Executor {
  private constructor(
    readonly items: ExecItem[],
    /** one per item; null for blocks */
    private readonly sessions: (ort.InferenceSession | null)[],
    readonly hidden: number,
    readonly maxSeq: number,
  ) {}

  static async create(items: ExecItem[], hidden: number, maxSeq: number, cfg: SessionConfig): Promise<Executor> {
    const sessions: (ort.InferenceSession | null)[] = [];
    for (const s of items) sessions.push(isBlock(s) ? null : await createSession(s.bytes, cfg));
    return new Executor(items, sessions, hidden, maxSeq);
  }

  /** The ONNX segments (blocks excluded). */
  get segments(): BuiltSegment[] {
    return this.items.filter((i): i is BuiltSegment => !isBlock(i));
  }

  get weightBytes(): number {
    return this.items.reduce((a, s) => a + s.weightBytes, 0);
  }

  newBatch(batch: number): BatchState {
    const st = new BatchState(batch);
    for (const seg of this.segments) {
      for (const l of seg.layers) {
        const empty = () => new ort.Tensor('float32', new Float32Array(0), [batch, seg.kvHeads, 0, seg.headDim]);
        st.kv.set(l, { k: empty(), v: empty() });
      }
    }
    return st;
  }

  /** Advance `state` by S new tokens per sequence. */
  async step(state: BatchState, S: number, input: StepInput, boundary?: BoundaryHook, timings?: SegmentTiming[], opts: StepOptions = {}): Promise<StepOutput> {
    const B = state.batch;
    const total = state.length + (opts.advance ?? S);
    if (total > this.maxSeq) {
      throw new Error(`sequence length ${total} exceeds the context this engine was built for (${this.maxSeq}); use a shorter prompt or fewer new tokens`);
    }
    const attnFeeds = state.lens ? raggedAttentionFeeds(state.lens, S, state.length) : attentionFeeds(B, S, state.length);
    let stream: StreamTensors | null = 'stream' in input ? input.stream : null;
    let logits: Float32Array | null = null;

    for (let i = 0; i < this.items.length; i++) {
      const seg = this.items[i];
      if (isBlock(seg)) {
        if (!stream) throw new Error(`block ${seg.name} needs the residual stream`);
        stream = await seg.run(state, stream, { S, plan: opts.plan, timings, stats: opts.stats });
        continue;
      }
      const feeds = this.segmentFeeds(seg, state, B, S, input, stream);
      if (seg.kernel) {
        Object.assign(feeds, attnFeeds(seg.kernel));
        // The standard-op kernel's per-row mask input (ragged batches); a plain batch adds zeros.
        if (seg.kernel === 'ops' && !feeds.row_mask) feeds.row_mask = noRowMask((feeds.ids ?? feeds.x).dims[1]);
      }
      const t0 = performance.now();
      const out = await this.sessions[i]!.run(feeds);
      if (timings) timings.push({ segment: seg.name, start: t0, ms: performance.now() - t0 });
      for (const l of seg.layers) state.kv.set(l, { k: out[presentK(l)] as ort.Tensor, v: out[presentV(l)] as ort.Tensor });
      if (seg.givesLogits) {
        logits = out.logits.data as Float32Array;
      } else {
        stream = { x: out.x_out.data as Float32Array, delta: seg.givesDelta ? (out.delta_out.data as Float32Array) : null };
        if (boundary) await boundary(seg, i, stream);
      }
    }
    state.length = total;
    if (state.lens) state.lens = state.lens.map((l) => l + S);
    if (logits) return { logits };
    return { stream: stream! };
  }

  /** A segment's inputs: token ids or the residual stream, and its layers' KV cache. */
  private segmentFeeds(seg: BuiltSegment, state: BatchState, B: number, S: number, input: StepInput, stream: StreamTensors | null): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    if (seg.takesIds) {
      if (!('ids' in input)) throw new Error(`segment ${seg.name} needs token ids`);
      feeds.ids = new ort.Tensor('int64', input.ids, [B, S]);
    } else {
      if (!stream) throw new Error(`segment ${seg.name} needs the residual stream`);
      // A block may hand on fewer positions than the step has (Megatron-SP
      // passes only the last token on to the LM head), so the stream's own
      // length sets the shape.
      const seq = stream.x.length / (B * this.hidden);
      feeds.x = new ort.Tensor('float32', stream.x, [B, seq, this.hidden]);
      if (seg.takesDelta) {
        if (!stream.delta) throw new Error(`segment ${seg.name} needs the previous sublayer output`);
        feeds.delta = new ort.Tensor('float32', stream.delta, [B, seq, this.hidden]);
      }
    }
    for (const l of seg.layers) {
      const kv = state.kv.get(l)!;
      feeds[pastK(l)] = kv.k;
      feeds[pastV(l)] = kv.v;
    }
    return feeds;
  }

  async release(): Promise<void> {
    await Promise.all(this.items.map((item, i) => (isBlock(item) ? item.release() : this.sessions[i]!.release())));
  }
}
