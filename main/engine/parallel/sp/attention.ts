/**
 * Sequence-parallel attention — Ulysses, Ring and their 2-D product USP — as
 * an executor block. With tp > 1 it works on this tp rank's heads (a column
 * slice of QKV, a row slice of o_proj) and ends with the tp all-reduce. The
 * sp group is a grid of U (Ulysses, all-to-all) × R (ring) ranks; sp rank s
 * has Ulysses index u = s mod U and ring index r = ⌊s/U⌋ (parallel/mesh.ts).
 * Weights are replicated (SP splits activations, not weights); every rank
 * holds the tokens the sequence layout gives it (sp/layout.ts).
 *
 * Prefill ("split" step: the step's tokens are divided over the sp ranks):
 *   1. qkv graph on my tokens: q, k, v for all heads, RoPE at their absolute positions.
 *   2. ulyssesSwap in my Ulysses group (ulysses.ts): (my tokens, all heads)
 *      → (the group's tokens, my N/U heads).
 *   3. The K/V I now hold are appended to my cache (ring.ts KvCache: the
 *      K/V of my Ulysses group's tokens for my heads, for every later step).
 *   4. Ring: R rounds; in each my queries attend to one K/V block (my own,
 *      then the ones ringPass brings), blocks entirely in my queries' causal
 *      future are skipped, partial results merged with log-sum-exp in the
 *      core graph (graphs.ts). The block passed is a rank's whole cache, so
 *      a prefill that continues a conversation sees every earlier token too.
 *   5. ulyssesBack: my heads' outputs go back to the tokens' ranks.
 *   6. out graph: o_proj on my tokens.
 * Decode ("replicated" step: every rank holds all of the step's tokens):
 *   my heads' K/V are appended on one ring member (the one holding the
 *   fewest tokens); each ring member attends to its own cache; the partial
 *   (o, lse) are merged over the ring (mergeOverRing); Ulysses members
 *   gatherHeads; o_proj runs everywhere (decode of one token cannot be
 *   split: the notes' "decode cannot split").
 *
 * The bytes in closed form: sp/comm.ts.
 */
import type { Piece } from '../../graph/segments';
import { createSession, ort } from '../../runtime/ort';
import { recordSpan } from '../../runtime/stream';
import type { StreamTensors } from '../../runtime/stream';
import type { BatchState } from '../../runtime/batch';
import type { Block, BlockEnv, BlockFactory, BlockStep } from '../../runtime/block';
import type { Communicator } from '../../comm/communicator';
import type { Range } from '../split';
import { buildSpCore, buildSpOut, buildSpQkv } from './graphs';
import { causalMask, concatAcc, emptyAcc, positionsOf, positionsTensor, shared, tiles } from './tiles';
import type { Acc } from './tiles';
import { myRuns } from './step';
import type { SpStepPlan } from './step';
import { KvCache, extent, mergeOverRing, ringPass, unpack } from './ring';
import type { KvBlock } from './ring';
import { gatherHeads, sliceHeadsNew, ulyssesBack, ulyssesHeads, ulyssesSwap } from './ulysses';
import type { UlyssesShape } from './ulysses';

interface Geometry extends UlyssesShape {
  H: number; // hidden
  R: number;
  r: number;
  heads: Range; // my query heads (Ulysses slice)
  kvHeads: Range; // the kv heads they read
}

/** The queries of one attention call: rows × B × nq × D, each row's position, and runs of rows. */
interface Queries {
  q: Float32Array;
  pos: Int32Array;
  runs: Range[];
}

class SpAttentionBlock implements Block {
  readonly kind = 'block' as const;
  readonly name: string;
  readonly layers: number[];

  constructor(
    readonly layer: number,
    readonly weightBytes: number,
    private readonly qkv: ort.InferenceSession,
    private readonly out: ort.InferenceSession,
    private readonly core: ort.InferenceSession,
    private readonly geo: Omit<Geometry, 'B'>,
    private readonly first: boolean,
    private readonly ulysses: Communicator | null,
    private readonly ring: Communicator | null,
    private readonly spRank: number,
    /** the tensor-parallel group when sp runs on tp-sharded heads (sp × tp) */
    private readonly tp: Communicator | null,
  ) {
    this.name = `sp-attn${layer}`;
    this.layers = [layer];
  }

  private get nq(): number {
    return this.geo.heads[1] - this.geo.heads[0];
  }

  private get nkv(): number {
    return this.geo.kvHeads[1] - this.geo.kvHeads[0];
  }

  async run(state: BatchState, stream: StreamTensors, step: BlockStep): Promise<StreamTensors> {
    const plan = step.plan as SpStepPlan;
    const g: Geometry = { ...this.geo, B: state.batch };
    const { B, D, H } = g;
    let cache = state.blocks.get(this.name) as KvCache | undefined;
    if (!cache) state.blocks.set(this.name, (cache = new KvCache(B * this.nkv * D)));

    const mine = myRuns(this.spRank, plan);
    const Sl = mine.reduce((a, [s, e]) => a + e - s, 0);
    if (stream.x.length !== B * Sl * H) throw new Error(`${this.name}: got ${stream.x.length} floats of residual, expected ${B}×${Sl}×${H}`);
    const t0 = performance.now();
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', stream.x, [B, Sl, H]),
      positions: shared(plan, `pos:${this.spRank}`, () => positionsTensor(B, plan.past, mine)),
    };
    if (!this.first) {
      if (!stream.delta) throw new Error(`${this.name}: missing the previous sublayer output`);
      feeds.delta = new ort.Tensor('float32', stream.delta, [B, Sl, H]);
    }
    const r1 = await this.qkv.run(feeds);
    recordSpan(step.timings, `${this.name}.qkv`, t0);
    const q = r1.q.data as Float32Array; // (Sl, B, N·D)
    const k = r1.k.data as Float32Array; // (Sl, B, KV·D)
    const v = r1.v.data as Float32Array;
    const attn = plan.mode === 'split'
      ? await this.splitAttention(plan, g, step, q, k, v, Sl, cache)
      : await this.replicatedAttention(plan, g, step, q, k, v, positionsOf(plan.past, mine), cache);

    const t2 = performance.now();
    const r3 = await this.out.run({ attn: new ort.Tensor('float32', attn, [Sl, B, g.N * D]) });
    recordSpan(step.timings, `${this.name}.out`, t2);
    const delta = r3.delta.data as Float32Array;
    if (this.tp) {
      // with tp, this rank's heads are a column slice and o_proj a row slice: Megatron's all-reduce
      const tc = performance.now();
      await this.tp.allReduce(delta);
      recordSpan(step.timings, `${this.name}.all_reduce`, tc, 'comm');
    }
    return { x: r1.x_out.data as Float32Array, delta };
  }

  /** Prefill: Ulysses swap, my cache gains the group's tokens, ring attention, Ulysses back. Returns attn (Sl, B, N·D). */
  private async splitAttention(plan: SpStepPlan, g: Geometry, step: BlockStep, q: Float32Array, k: Float32Array, v: Float32Array, Sl: number, cache: KvCache): Promise<Float32Array> {
    const members = Array.from({ length: g.U }, (_, uu) => g.r * g.U + uu);
    const memberRuns = members.map((s) => plan.runs[s]);
    const memberTokens = memberRuns.map((rs) => rs.reduce((a, [s, e]) => a + e - s, 0));
    let heads = { q, k, v };
    if (g.U > 1) {
      const tc = performance.now();
      heads = await ulyssesSwap(this.ulysses!, g, q, k, v, Sl, memberTokens);
      recordSpan(step.timings, `${this.name}.a2a`, tc, 'comm');
    }
    // the queries' positions and runs, in member order
    const qs: Queries = { q: heads.q, pos: new Int32Array(memberTokens.reduce((a, b) => a + b, 0)), runs: [] };
    let row = 0;
    for (const rs of memberRuns) {
      for (const [s, e] of rs) {
        for (let i = s; i < e; i++) qs.pos[row + i - s] = plan.past + i;
        qs.runs.push([row, row + e - s]);
        row += e - s;
      }
    }
    cache.append(heads.k, heads.v, qs.pos, qs.runs.map(([s]) => s), false);
    const o = await this.ringAttention(plan, g, step, qs, cache);
    if (g.U === 1) return o;
    const tc = performance.now();
    const attn = await ulyssesBack(this.ulysses!, g, o, Sl, memberTokens);
    recordSpan(step.timings, `${this.name}.a2a`, tc, 'comm');
    return attn;
  }

  /**
   * Ring attention of `qs` over every rank's cache in my ring: R rounds,
   * passing caches forward. Returns o (rows, B, nq, D).
   */
  private async ringAttention(plan: SpStepPlan, g: Geometry, step: BlockStep, qs: Queries, cache: KvCache): Promise<Float32Array> {
    const { B, D, R } = g;
    // queries in tiles, each with its own accumulator
    const tiled: Queries = { ...qs, runs: tiles(qs.runs) };
    const accs: Acc[] = tiled.runs.map(([s, e]) => emptyAcc(plan, e - s, B, this.nq, D));
    let block: KvBlock = cache.block();
    let msg: Float32Array | null = R > 1 ? cache.pack() : null;
    for (let t = 0; t < R; t++) {
      const src = (g.r - t + R) % R;
      await this.attendBlock(plan, step, tiled, accs, block, B, `r${src}`);
      // Pass the block on after computing with it: session.run holds the JS
      // thread, so an exchange started earlier could not overlap anyway, and
      // its waiting peer would spin on a core the computation needs.
      if (t < R - 1 && this.ring) {
        const tc = performance.now();
        msg = await ringPass(this.ring, msg!);
        recordSpan(step.timings, `${this.name}.ring`, tc, 'comm');
        block = unpack(msg, B * this.nkv * D);
      }
    }
    return concatAcc(accs, tiled.runs, B * this.nq * D);
  }

  /**
   * Fold one K/V block into the accumulators of every query run. Runs are cut
   * into tiles of at most TILE tokens so that, as in flash attention, tiles
   * entirely in a query tile's causal future are skipped and fully visible
   * ones need no mask: causal attention costs about half of the full square.
   */
  private async attendBlock(plan: SpStepPlan, step: BlockStep, qs: Queries, accs: Acc[], block: KvBlock, B: number, tag: string): Promise<void> {
    const { nq, nkv } = this;
    const D = this.geo.D;
    const rowQ = B * nq * D;
    const rowKv = B * nkv * D;
    const kvTiles = block.runs.flatMap((r) => tiles([[r.start, r.end]])).map(([start, end]) => ({ start, end, ...extent(block.pos.subarray(start, end)) }));
    for (let i = 0; i < qs.runs.length; i++) {
      const [q0, q1] = qs.runs[i];
      const qp = qs.pos.subarray(q0, q1);
      const qMin = qp[0];
      const qMax = qp[qp.length - 1];
      for (const kr of kvTiles) {
        if (kr.minPos > qMax) continue; // entirely in the causal future
        const T = kr.end - kr.start;
        const visible = kr.maxPos <= qMin;
        const maskKey = visible ? `z:${q1 - q0}:${T}` : `m:${tag}:${q0}:${kr.start}:${kr.end}`;
        const mask = shared(plan, maskKey, () => causalMask(qp, block.pos.subarray(kr.start, kr.end), visible));
        const t0 = performance.now();
        const out = await this.core.run({
          q: new ort.Tensor('float32', qs.q.subarray(q0 * rowQ, q1 * rowQ), [q1 - q0, B, nq, D]),
          k: new ort.Tensor('float32', block.k.subarray(kr.start * rowKv, kr.end * rowKv), [T, B, nkv, D]),
          v: new ort.Tensor('float32', block.v.subarray(kr.start * rowKv, kr.end * rowKv), [T, B, nkv, D]),
          mask,
          o_acc: accs[i].o,
          lse_acc: accs[i].lse,
        });
        recordSpan(step.timings, `${this.name}.core`, t0);
        accs[i] = { o: out.o as ort.Tensor, lse: out.lse as ort.Tensor };
      }
    }
  }

  /** Decode: every rank holds the step's tokens; attention is split by heads (Ulysses) and by cache shard (ring). */
  private async replicatedAttention(plan: SpStepPlan, g: Geometry, step: BlockStep, q: Float32Array, k: Float32Array, v: Float32Array, pos: Int32Array, cache: KvCache): Promise<Float32Array> {
    const { B, N, KV, D, U, R } = g;
    const S = pos.length;
    const qh = U > 1 ? sliceHeadsNew(q, S * B, N, D, g.heads) : q;
    if (R === 1 || plan.owner === g.r) {
      const whole = U === 1 && this.nkv === KV;
      cache.append(whole ? k : sliceHeadsNew(k, S * B, KV, D, g.kvHeads), whole ? v : sliceHeadsNew(v, S * B, KV, D, g.kvHeads), pos, [0], true);
    }
    const accs: Acc[] = [emptyAcc(plan, S, B, this.nq, D)];
    await this.attendBlock(plan, step, { q: qh, pos, runs: [[0, S]] }, accs, cache.block(), B, 'own');
    let o = accs[0].o.data as Float32Array;
    if (R > 1) {
      // merge the ring members' partial results: all-gather (o, lse), then log-sum-exp in fp32
      const tc = performance.now();
      o = await mergeOverRing(this.ring!, o, accs[0].lse.data as Float32Array, S * B * this.nq, D);
      recordSpan(step.timings, `${this.name}.ring`, tc, 'comm');
    }
    if (U === 1) return o;
    const tc = performance.now();
    const attn = await gatherHeads(this.ulysses!, g, o, S * B);
    recordSpan(step.timings, `${this.name}.a2a`, tc, 'comm');
    return attn;
  }

  async release(): Promise<void> {
    await Promise.all([this.qkv.release(), this.out.release()]);
  }
}

/** Claims every attention piece under sp_impl=ulysses|ring|usp (sp > 1). */
export const spAttentionBlocks: BlockFactory = async (piece: Piece, env: BlockEnv): Promise<Block | null> => {
  const sp = env.plan.sp;
  if (piece.kind !== 'attn' || !sp || sp.size < 2 || sp.impl === 'megatron') return null;
  const { hidden: H, heads: N, kvHeads: KV, headDim: D, eps, first } = piece.s;
  const U = sp.ulysses;
  const R = sp.size / U;
  const u = sp.rank % U;
  const r = Math.floor(sp.rank / U);
  if (N % U !== 0) throw new Error(`ulysses=${U} does not divide the ${N} attention heads`);
  const { hq: heads, hkv: kvHeads } = ulyssesHeads(N, KV, U, u);
  const qkv = buildSpQkv(`l${piece.layer}.sp.qkv`, piece.w, { hidden: H, heads: N, kvHeads: KV, headDim: D, eps, first }, env.rope);
  const out = buildSpOut(`l${piece.layer}.sp.out`, piece.w.wo, N * D, H);
  const nq = heads[1] - heads[0];
  const nkv = kvHeads[1] - kvHeads[0];
  // the core graph has no weights: one session serves every layer of this rank
  const key = `sp.core:${nq}:${nkv}:${D}`;
  if (!env.shared.has(key)) env.shared.set(key, createSession(buildSpCore(nq, nkv, D), env.session));
  return new SpAttentionBlock(
    piece.layer,
    qkv.weightBytes + out.weightBytes,
    await createSession(qkv.bytes, env.session),
    await createSession(out.bytes, env.session),
    await env.shared.get(key)!,
    { H, N, KV, D, U, R, u, r, heads, kvHeads },
    first,
    U > 1 ? env.group('ulysses') : null,
    R > 1 ? env.group('ring') : null,
    sp.rank,
    env.plan.tp.size > 1 ? env.group('tp') : null,
  );
};
