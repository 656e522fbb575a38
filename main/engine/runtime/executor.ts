/**
 * Runs one rank's segments for a batch of sequences that advance together,
 * keeping their KV cache (the layers / heads this rank owns) between steps.
 *
 *   step(ids or (x, delta), S) → logits (B,V) on the last stage, else (x, delta) (B,S,H)
 *
 * Between two segments the plan's `boundary` hook runs (TP: all-reduce of the
 * sublayer output in place); the executor itself never communicates.
 *
 * Some steps are not one ONNX session but a `Block`: a piece of the layer whose
 * computation is interleaved with collectives (sequence-parallel attention:
 * all-to-all / ring passes between its graphs; MoE experts: dispatch and
 * combine around them). A block maps the residual stream (x, delta) to the
 * next (x, delta), runs its own sessions and keeps its own per-batch state in
 * `BatchState.blocks`.
 */
import { createSession, ort } from './ort';
import type { SessionConfig } from './ort';
import { pastK, pastV, presentK, presentV } from '../graph/segments';
import type { BuiltSegment } from '../graph/segments';
import { raggedAttentionFeeds } from '../serving-feeds';

export interface StreamTensors {
  x: Float32Array; // (B,S,H)
  delta: Float32Array | null; // (B,S,H)
}

export type StepInput = { ids: BigInt64Array } | { stream: StreamTensors };

export type StepOutput = { logits: Float32Array } | { stream: StreamTensors };

export interface SegmentTiming {
  segment: string;
  start: number; // performance.now() ms
  ms: number;
  /** what the span was: a session run (default), a collective, or waiting for the previous pipeline stage */
  cat?: 'compute' | 'comm' | 'bubble';
}

/** Append the span [start, now] (performance.now() ms) to a step's timings, when they are kept. */
export function recordSpan(timings: SegmentTiming[] | undefined, segment: string, start: number, cat: SegmentTiming['cat'] = 'compute'): void {
  timings?.push({ segment, start, ms: performance.now() - start, cat });
}

/** Called after a segment whose output crosses a collective; may rewrite the stream in place. */
export type BoundaryHook = (seg: BuiltSegment, index: number, stream: StreamTensors) => Promise<void> | void;

interface LayerKv {
  k: ort.Tensor;
  v: ort.Tensor;
}

/** What a block may keep between steps of one batch; kvBytes() counts its cache. */
export interface BlockState {
  kvBytes(): number;
}

/** KV cache and length of one batch of sequences on this rank. */
export class BatchState {
  readonly kv = new Map<number, LayerKv>();
  /** per block name: the block's own cache (e.g. a sequence shard of K/V) */
  readonly blocks = new Map<string, BlockState>();
  /** tokens already in the cache (of the whole sequence, also when this rank holds only a shard of it) */
  length = 0;
  /**
   * Continuous batching: tokens per row when the rows differ (a ragged batch,
   * serving-kv.ts; `length` is then the cache width, max lens); null when
   * every row has `length`.
   */
  lens: number[] | null = null;
  constructor(readonly batch: number) {}

  kvBytes(): number {
    let n = 0;
    for (const { k, v } of this.kv.values()) n += (k.data as Float32Array).byteLength + (v.data as Float32Array).byteLength;
    for (const b of this.blocks.values()) n += b.kvBytes();
    return n;
  }
}

/** What a block sees of the step it is part of. */
export interface BlockStep {
  /** new tokens per sequence on this rank in this step (a shard of the step's tokens under SP) */
  S: number;
  /** plan-specific description of the step (e.g. which sequence positions this rank holds) */
  plan: unknown;
  timings?: SegmentTiming[];
}

/** A step of the executor made of several sessions with collectives between them. */
export interface Block {
  readonly kind: 'block';
  readonly name: string;
  readonly weightBytes: number;
  /** attention layers whose cache the block keeps (for reports) */
  readonly layers: number[];
  run(state: BatchState, stream: StreamTensors, step: BlockStep): Promise<StreamTensors>;
  release(): Promise<void>;
}

export type ExecItem = BuiltSegment | Block;

export function isBlock(item: ExecItem): item is Block {
  return (item as Block).kind === 'block';
}

export interface StepOptions {
  /** how far the sequence advances (default S; under SP a rank runs a shard of the step's tokens) */
  advance?: number;
  /** handed to blocks as BlockStep.plan */
  plan?: unknown;
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
        stream = await seg.run(state, stream, { S, plan: opts.plan, timings });
        continue;
      }
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
      if (seg.kernel) {
        Object.assign(feeds, attnFeeds(seg.kernel));
        // The standard-op kernel's per-row mask input (ragged batches); a plain batch adds zeros.
        if (seg.kernel === 'ops' && !feeds.row_mask) feeds.row_mask = noRowMask((feeds.ids ?? feeds.x).dims[1]);
        for (const l of seg.layers) {
          const kv = state.kv.get(l)!;
          feeds[pastK(l)] = kv.k;
          feeds[pastV(l)] = kv.v;
        }
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

  async release(): Promise<void> {
    await Promise.all(this.items.map((item, i) => (isBlock(item) ? item.release() : this.sessions[i]!.release())));
  }
}

/** The row mask of a plain batch: (1,1,S,1) zeros, which broadcast once tiled over a query group. */
const noRowMasks = new Map<number, ort.Tensor>();
function noRowMask(S: number): ort.Tensor {
  let t = noRowMasks.get(S);
  if (!t) noRowMasks.set(S, (t = new ort.Tensor('float32', new Float32Array(S), [1, 1, S, 1])));
  return t;
}

/**
 * The per-step inputs attention needs, built once per step and shared by all
 * segments: GQA takes lengths; the standard-op kernel takes absolute positions
 * and an additive causal mask (S, P+S) where query i sees keys j ≤ P + i.
 */
export function attentionFeeds(B: number, S: number, past: number) {
  const cache = new Map<string, Record<string, ort.Tensor>>();
  return (kernel: 'gqa' | 'ops'): Record<string, ort.Tensor> => {
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
