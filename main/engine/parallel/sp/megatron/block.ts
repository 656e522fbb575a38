/**
 * Megatron sequence parallelism (`tp=N,sp_impl=megatron`, Korthikanti et al.
 * 2022) as executor blocks, one per sublayer. Between sublayers each tp rank
 * holds only its contiguous shard of the sequence (residual stream, norms);
 * Megatron's g / ḡ operators become (collectives.ts):
 *
 *   norm(shard) ─all-gather(seq)→ body (column ∥ … ∥ row parallel) ─reduce-scatter(seq)→ delta shard
 *
 * instead of plain TP's all-reduce of the whole sequence: the same bytes per
 * sublayer (an all-reduce is a reduce-scatter plus an all-gather), but the
 * norms and the residual are computed once per token instead of N times, and
 * the activations between sublayers take 1/N of the memory. The bytes:
 * megatron/comm.ts.
 *
 * The vocab-parallel embedding is reduce-scattered instead of all-reduced
 * (rank/stage.ts's boundary); the last sublayer before the LM head
 * broadcasts the last token's row from the rank holding it, so every rank's
 * vocab shard sees it. A step with fewer tokens than ranks (decode) cannot
 * be split: it runs as plain TP (the notes' "decode cannot split").
 */
import type { Piece } from '../../../graph/segments';
import { attnKernel } from '../../../graph/layers';
import { createSession, ort } from '../../../runtime/ort';
import { recordSpan } from '../../../runtime/stream';
import type { StreamTensors } from '../../../runtime/stream';
import { attentionFeeds } from '../../../runtime/feeds';
import type { BatchState, BlockState } from '../../../runtime/batch';
import type { Block, BlockEnv, BlockFactory, BlockStep } from '../../../runtime/block';
import type { Communicator } from '../../../comm/communicator';
import { buildAttnBody, buildMlpBody, buildNorm } from './graphs';
import type { MegatronStepPlan } from './plan';
import { broadcastLastRow, gatherSequence, scatterSequence } from './collectives';

class LayerKv implements BlockState {
  constructor(
    public k: ort.Tensor,
    public v: ort.Tensor,
  ) {}
  kvBytes(): number {
    return (this.k.data as Float32Array).byteLength + (this.v.data as Float32Array).byteLength;
  }
}

class MegatronSublayer implements Block {
  readonly kind = 'block' as const;
  readonly name: string;
  readonly layers: number[];

  constructor(
    readonly layer: number,
    private readonly attention: { kvHeads: number; headDim: number } | null,
    readonly weightBytes: number,
    private readonly norm: ort.InferenceSession,
    private readonly body: ort.InferenceSession,
    private readonly hidden: number,
    private readonly first: boolean,
    /** this is the stage's last sublayer and the LM head follows */
    private readonly beforeHead: boolean,
    private readonly tp: Communicator,
  ) {
    this.name = `${attention ? 'attn' : 'mlp'}${layer}.megatron`;
    this.layers = attention ? [layer] : [];
  }

  async run(state: BatchState, stream: StreamTensors, step: BlockStep): Promise<StreamTensors> {
    const plan = step.plan as MegatronStepPlan;
    const B = state.batch;
    const H = this.hidden;
    const [s0, s1] = plan.shards[this.tp.rank];
    const Sl = s1 - s0;
    const split = plan.mode === 'split';
    if (stream.x.length !== B * Sl * H) throw new Error(`${this.name}: got ${stream.x.length} floats of residual, expected ${B}×${Sl}×${H}`);

    let t = performance.now();
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', stream.x, [B, Sl, H]) };
    if (!this.first) {
      if (!stream.delta) throw new Error(`${this.name}: missing the previous sublayer output`);
      feeds.delta = new ort.Tensor('float32', stream.delta, [B, Sl, H]);
    }
    const n = await this.norm.run(feeds);
    recordSpan(step.timings, `${this.name}.norm`, t);
    const resid = n.resid.data as Float32Array;
    let normed = n.normed.data as Float32Array;

    if (split) {
      t = performance.now();
      normed = await gatherSequence(this.tp, normed, plan.shards, B, H);
      recordSpan(step.timings, `${this.name}.all_gather`, t, 'comm');
    }

    t = performance.now();
    const out = await this.body.run(this.bodyFeeds(state, normed, plan));
    recordSpan(step.timings, `${this.name}.body`, t);
    if (this.attention) {
      const kv = state.blocks.get(this.name) as LayerKv;
      kv.k = out.present_k as ort.Tensor;
      kv.v = out.present_v as ort.Tensor;
    }
    let delta = out.out.data as Float32Array;

    t = performance.now();
    if (split) {
      delta = await scatterSequence(this.tp, delta, plan.shards, B, H);
      recordSpan(step.timings, `${this.name}.reduce_scatter`, t, 'comm');
    } else {
      await this.tp.allReduce(delta);
      recordSpan(step.timings, `${this.name}.all_reduce`, t, 'comm');
    }

    if (split && this.beforeHead) {
      t = performance.now();
      const last = await broadcastLastRow(this.tp, resid, delta, B, Sl, H);
      recordSpan(step.timings, `${this.name}.broadcast`, t, 'comm');
      return last;
    }
    return { x: resid, delta };
  }

  /** The body's inputs: the whole normed sequence and, for attention, its cache and step inputs. */
  private bodyFeeds(state: BatchState, normed: Float32Array, plan: MegatronStepPlan): Record<string, ort.Tensor> {
    const B = state.batch;
    const feeds: Record<string, ort.Tensor> = { normed: new ort.Tensor('float32', normed, [B, plan.S, this.hidden]) };
    if (!this.attention) return feeds;
    const { kvHeads, headDim } = this.attention;
    let kv = state.blocks.get(this.name) as LayerKv | undefined;
    if (!kv) {
      const empty = () => new ort.Tensor('float32', new Float32Array(0), [B, kvHeads, 0, headDim]);
      state.blocks.set(this.name, (kv = new LayerKv(empty(), empty())));
    }
    feeds.past_k = kv.k;
    feeds.past_v = kv.v;
    return Object.assign(feeds, attentionFeeds(B, plan.S, plan.past)(attnKernel(headDim)));
  }

  async release(): Promise<void> {
    await Promise.all([this.norm.release(), this.body.release()]);
  }
}

/** Claims every attention and MLP piece under sp_impl=megatron. */
export const megatronBlocks: BlockFactory = async (piece: Piece, env: BlockEnv, index: number, pieces: Piece[]) => {
  const sp = env.plan.sp;
  if (!sp || sp.impl !== 'megatron' || (piece.kind !== 'attn' && piece.kind !== 'mlp')) return null;
  const tp = env.group('tp');
  if (!tp) throw new Error('sp_impl=megatron needs tp > 1 (it splits the sequence over the tensor-parallel ranks)');
  const beforeHead = pieces[index + 1]?.kind === 'head';
  if (piece.kind === 'attn') {
    const { hidden: H, eps, first, kvHeads, headDim } = piece.s;
    const norm = buildNorm(`l${piece.layer}.megatron.attn.norm`, piece.w.inputNorm, H, eps, first);
    const body = buildAttnBody(`l${piece.layer}.megatron.attn.body`, piece.w, piece.s, env.rope);
    return new MegatronSublayer(piece.layer, { kvHeads, headDim }, norm.weightBytes + body.weightBytes, await createSession(norm.bytes, env.session), await createSession(body.bytes, env.session), H, first, beforeHead, tp);
  }
  const { hidden: H, eps } = piece.s;
  const norm = buildNorm(`l${piece.layer}.megatron.mlp.norm`, piece.w.postNorm, H, eps, false);
  const body = buildMlpBody(`l${piece.layer}.megatron.mlp.body`, piece.w, piece.s);
  return new MegatronSublayer(piece.layer, null, norm.weightBytes + body.weightBytes, await createSession(norm.bytes, env.session), await createSession(body.bytes, env.session), H, false, beforeHead, tp);
};
