/**
 * Sequence-parallel attention — Ulysses, Ring and their 2-D product USP — as
 * an executor block. With tp > 1 it works on this tp rank's heads (a column
 * slice of QKV, a row slice of o_proj) and ends with the tp all-reduce. The sp group is a grid of U (Ulysses, all-to-all) × R
 * (ring) ranks; sp rank s has Ulysses index u = s mod U and ring index
 * r = ⌊s/U⌋ (mesh.ts). Weights are replicated (SP splits activations, not
 * weights); every rank holds the tokens the sequence layout gives it
 * (parallel/sequence.ts).
 *
 * Prefill ("split" step: the step's tokens are divided over the sp ranks):
 *   1. qkv graph on my tokens: q, k, v for all heads, RoPE at their absolute positions.
 *   2. Ulysses all-to-all in my Ulysses group: I send member u' my tokens'
 *      slice of u' heads and receive every member's tokens for my heads:
 *      seq-sharded/all-heads → (the group's tokens)/(my N/U heads).
 *   3. The K/V I now hold are appended to my cache (this rank keeps the K/V
 *      of its Ulysses group's tokens for its heads, for every later step).
 *   4. Ring: R rounds; in each my queries attend to one K/V block (my own,
 *      then the ones passed round the ring), blocks entirely in my queries'
 *      causal future are skipped, partial results merged with log-sum-exp
 *      (graph/sp.ts). The block passed is a rank's whole cache, so a prefill
 *      that continues a conversation sees every earlier token too.
 *   5. Ulysses all-to-all back: my heads' outputs go back to the tokens' ranks.
 *   6. out graph: o_proj on my tokens.
 * Decode ("replicated" step: every rank holds all of the step's tokens):
 *   my heads' K/V are appended on one ring member (the one holding the
 *   fewest tokens); each ring member attends to its own cache; the partial
 *   (o, lse) are all-gathered over the ring and merged; Ulysses members
 *   all-gather their heads; o_proj runs everywhere (decode of one token
 *   cannot be split: the notes' "decode cannot split").
 *
 * Per-link volumes (B·D·4 bytes per token·head): Ulysses sends (U−1)/U of
 * its tokens' q+k+v forward and of o back; the ring sends its whole K/V
 * cache R−1 times. parallel/expected.ts states both in closed form.
 */
import { registerBlockFactory } from './blocks';
import type { BlockEnv } from './blocks';
import type { Piece } from '../graph/segments';
import { buildSpCore, buildSpOut, buildSpQkv, MASKED } from '../graph/sp';
import { createSession, ort } from '../runtime/ort';
import { recordSpan } from '../runtime/executor';
import type { BatchState, Block, BlockState, BlockStep, StreamTensors } from '../runtime/executor';
import type { Communicator } from '../comm/communicator';
import { kvHeadRange, splitEven } from '../parallel/split';
import type { Range } from '../parallel/split';

/** What the stage tells the blocks about one step (identical on every rank of the sp group). */
export interface SpStepPlan {
  mode: 'split' | 'replicated';
  /** tokens per sequence in the cache before this step */
  past: number;
  /** new tokens per sequence in this step (the whole step, not my share) */
  S: number;
  /** split: step-relative runs [start, end) held by each sp rank */
  runs: Range[][];
  /** replicated: the ring member that stores this step's K/V */
  owner: number;
  /** tensors shared by every layer of the step (positions, masks, empty accumulators) */
  cache: Map<string, ort.Tensor>;
}

/** One contiguous group of cache rows and the positions it covers. */
interface Run {
  start: number;
  end: number;
  minPos: number;
  maxPos: number;
}

/** The K/V rows (T, B, nkv, D) this rank holds for one layer, with each row's absolute position. */
class KvCache implements BlockState {
  k = new Float32Array(0);
  v = new Float32Array(0);
  pos = new Int32Array(0);
  rows = 0;
  runs: Run[] = [];
  constructor(readonly rowFloats: number) {}

  kvBytes(): number {
    return 2 * this.rows * this.rowFloats * 4;
  }

  /** Append rows; `runBreaks` are row offsets (within the new rows) where a new run starts (0 always does). */
  append(k: Float32Array, v: Float32Array, pos: Int32Array, runBreaks: number[], mergeWithLast: boolean): void {
    const n = pos.length;
    if (n === 0) return;
    this.reserve(this.rows + n);
    this.k.set(k, this.rows * this.rowFloats);
    this.v.set(v, this.rows * this.rowFloats);
    this.pos.set(pos, this.rows);
    const breaks = [...runBreaks, n];
    for (let i = 0; i + 1 < breaks.length; i++) {
      const [a, b] = [breaks[i], breaks[i + 1]];
      if (a === b) continue;
      const seg = pos.subarray(a, b);
      const run: Run = { start: this.rows + a, end: this.rows + b, ...extent(seg) };
      const last = this.runs[this.runs.length - 1];
      if (i === 0 && mergeWithLast && last && last.end === run.start) {
        last.end = run.end;
        last.minPos = Math.min(last.minPos, run.minPos);
        last.maxPos = Math.max(last.maxPos, run.maxPos);
      } else {
        this.runs.push(run);
      }
    }
    this.rows += n;
  }

  private reserve(rows: number): void {
    if (rows * this.rowFloats <= this.k.length) return;
    const cap = Math.max(rows, Math.ceil(this.rows * 1.5) + 16) * this.rowFloats;
    const grow = (a: Float32Array) => {
      const b = new Float32Array(cap);
      b.set(a.subarray(0, this.rows * this.rowFloats));
      return b;
    };
    this.k = grow(this.k);
    this.v = grow(this.v);
    const p = new Int32Array(cap / this.rowFloats);
    p.set(this.pos.subarray(0, this.rows));
    this.pos = p;
  }

  /** The cache as one message for the ring: [rows, nRuns, (start, end)…, positions…, K…, V…] (ints ride as float32: exact below 2^24). */
  pack(): Float32Array {
    const head = 2 + 2 * this.runs.length + this.rows;
    const msg = new Float32Array(head + 2 * this.rows * this.rowFloats);
    msg[0] = this.rows;
    msg[1] = this.runs.length;
    this.runs.forEach((r, i) => {
      msg[2 + 2 * i] = r.start;
      msg[3 + 2 * i] = r.end;
    });
    const p0 = 2 + 2 * this.runs.length;
    for (let i = 0; i < this.rows; i++) msg[p0 + i] = this.pos[i];
    msg.set(this.k.subarray(0, this.rows * this.rowFloats), head);
    msg.set(this.v.subarray(0, this.rows * this.rowFloats), head + this.rows * this.rowFloats);
    return msg;
  }
}

/** Smallest and largest position of a run (a loop: runs can be longer than spread arguments allow). */
function extent(pos: Int32Array): { minPos: number; maxPos: number } {
  let minPos = Infinity;
  let maxPos = -Infinity;
  for (let i = 0; i < pos.length; i++) {
    if (pos[i] < minPos) minPos = pos[i];
    if (pos[i] > maxPos) maxPos = pos[i];
  }
  return { minPos, maxPos };
}

/** A K/V block to attend to: this rank's cache or one received from the ring. */
interface KvBlock {
  k: Float32Array;
  v: Float32Array;
  pos: Int32Array;
  runs: Run[];
}

function unpack(msg: Float32Array, rowFloats: number): KvBlock {
  const rows = msg[0];
  const nRuns = msg[1];
  const pos = new Int32Array(rows);
  const p0 = 2 + 2 * nRuns;
  for (let i = 0; i < rows; i++) pos[i] = msg[p0 + i];
  const runs: Run[] = [];
  for (let i = 0; i < nRuns; i++) {
    const start = msg[2 + 2 * i];
    const end = msg[3 + 2 * i];
    const seg = pos.subarray(start, end);
    runs.push({ start, end, ...extent(seg) });
  }
  const head = p0 + rows;
  return { pos, runs, k: msg.subarray(head, head + rows * rowFloats), v: msg.subarray(head + rows * rowFloats, head + 2 * rows * rowFloats) };
}

/** Running (o, lse) of one run of query rows. */
interface Acc {
  o: ort.Tensor;
  lse: ort.Tensor;
}

interface Geometry {
  B: number;
  H: number; // hidden
  N: number; // all query heads
  KV: number; // all kv heads
  D: number;
  U: number;
  R: number;
  u: number;
  r: number;
  heads: Range; // my query heads (Ulysses slice)
  kvHeads: Range; // the kv heads they read
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

  async run(state: BatchState, stream: StreamTensors, step: BlockStep): Promise<StreamTensors> {
    const plan = step.plan as SpStepPlan;
    const g: Geometry = { ...this.geo, B: state.batch };
    const { B, N, KV, D, U } = g;
    const nq = g.heads[1] - g.heads[0];
    const nkv = g.kvHeads[1] - g.kvHeads[0];
    const cacheKey = this.name;
    let cache = state.blocks.get(cacheKey) as KvCache | undefined;
    if (!cache) state.blocks.set(cacheKey, (cache = new KvCache(B * nkv * D)));

    const myRuns = plan.mode === 'split' ? plan.runs[this.spRank] : [[0, plan.S] as Range];
    const Sl = myRuns.reduce((a, [s, e]) => a + e - s, 0);
    const t0 = performance.now();
    const H = this.geo.H;
    if (stream.x.length !== B * Sl * H) throw new Error(`${this.name}: got ${stream.x.length} floats of residual, expected ${B}×${Sl}×${H}`);
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', stream.x, [B, Sl, H]),
      positions: shared(plan, `pos:${this.spRank}`, () => positionsTensor(B, plan.past, myRuns)),
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
    const myPos = positionsOf(plan.past, myRuns);

    let attn: Float32Array; // (Sl, B, N·D)
    if (plan.mode === 'split') {
      // 2. Ulysses: (my tokens, all heads) → (group's tokens, my heads)
      const members = Array.from({ length: U }, (_, uu) => g.r * U + uu);
      const memberRuns = members.map((s) => plan.runs[s]);
      const memberTokens = memberRuns.map((rs) => rs.reduce((a, [s, e]) => a + e - s, 0));
      let qh: Float32Array;
      let kh: Float32Array;
      let vh: Float32Array;
      if (U > 1) {
        const ranges = members.map((_, uu) => {
          const hq = splitEven(N, U, uu);
          return { hq, hkv: kvHeadRange(N, KV, hq[0], hq[1]) };
        });
        const sendCounts = ranges.map(({ hq, hkv }) => Sl * B * ((hq[1] - hq[0]) + 2 * (hkv[1] - hkv[0])) * D);
        const send = new Float32Array(sendCounts.reduce((a, b) => a + b, 0));
        let off = 0;
        for (const { hq, hkv } of ranges) {
          off = sliceHeads(q, Sl * B, N, D, hq, send, off);
          off = sliceHeads(k, Sl * B, KV, D, hkv, send, off);
          off = sliceHeads(v, Sl * B, KV, D, hkv, send, off);
        }
        const recvCounts = memberTokens.map((t) => t * B * (nq + 2 * nkv) * D);
        const tc = performance.now();
        const got = await this.ulysses!.allToAllV(send, sendCounts, recvCounts);
        recordSpan(step.timings, `${this.name}.a2a`, tc, 'comm');
        const T = memberTokens.reduce((a, b) => a + b, 0);
        qh = new Float32Array(T * B * nq * D);
        kh = new Float32Array(T * B * nkv * D);
        vh = new Float32Array(T * B * nkv * D);
        let src = 0;
        let row = 0;
        for (const t of memberTokens) {
          const nQ = t * B * nq * D;
          const nK = t * B * nkv * D;
          qh.set(got.subarray(src, src + nQ), row * B * nq * D);
          kh.set(got.subarray(src + nQ, src + nQ + nK), row * B * nkv * D);
          vh.set(got.subarray(src + nQ + nK, src + nQ + 2 * nK), row * B * nkv * D);
          src += nQ + 2 * nK;
          row += t;
        }
      } else {
        qh = q;
        kh = k;
        vh = v;
      }
      // the queries' positions and runs, in member order
      const qPos = new Int32Array(memberTokens.reduce((a, b) => a + b, 0));
      const qRuns: Range[] = [];
      let row = 0;
      for (const rs of memberRuns) {
        for (const [s, e] of rs) {
          for (let i = s; i < e; i++) qPos[row + i - s] = plan.past + i;
          qRuns.push([row, row + e - s]);
          row += e - s;
        }
      }
      // 3. my cache gains the group's tokens for my heads
      cache.append(kh, vh, qPos, qRuns.map(([s]) => s), false);
      // 4. ring
      const o = await this.ringAttention(plan, g, step, qh, qPos, qRuns, cache);
      // 5. Ulysses back: my heads of every member's tokens → all heads of my tokens
      if (U > 1) {
        const sendCounts = memberTokens.map((t) => t * B * nq * D);
        const tc = performance.now();
        const got = await this.ulysses!.allToAllV(o, sendCounts, members.map(() => Sl * B * nq * D));
        recordSpan(step.timings, `${this.name}.a2a`, tc, 'comm');
        attn = new Float32Array(Sl * B * N * D);
        members.forEach((_, uu) => {
          const hq = splitEven(N, U, uu);
          const w = hq[1] - hq[0];
          placeHeads(got.subarray(uu * Sl * B * w * D, (uu + 1) * Sl * B * w * D), Sl * B, N, D, hq, attn);
        });
      } else {
        attn = o;
      }
    } else {
      attn = await this.replicatedAttention(plan, g, step, q, k, v, myPos, cache);
    }

    const t2 = performance.now();
    const r3 = await this.out.run({ attn: new ort.Tensor('float32', attn, [Sl, B, N * D]) });
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

  /**
   * Ring attention of queries `q` (rows × B × nq × D, positions qPos, runs
   * qRuns) over every rank's cache in my ring: R rounds, passing caches
   * forward. Returns o (rows, B, nq, D).
   */
  private async ringAttention(plan: SpStepPlan, g: Geometry, step: BlockStep, q: Float32Array, qPos: Int32Array, qRuns: Range[], cache: KvCache): Promise<Float32Array> {
    // queries in tiles, each with its own accumulator
    const { B, D, R } = g;
    const nq = g.heads[1] - g.heads[0];
    const nkv = g.kvHeads[1] - g.kvHeads[0];
    qRuns = tiles(qRuns);
    const accs: Acc[] = qRuns.map(([s, e]) => emptyAcc(plan, e - s, B, nq, D));
    let block: KvBlock = { k: cache.k.subarray(0, cache.rows * cache.rowFloats), v: cache.v.subarray(0, cache.rows * cache.rowFloats), pos: cache.pos.subarray(0, cache.rows), runs: cache.runs };
    let msg: Float32Array | null = R > 1 ? cache.pack() : null;
    for (let t = 0; t < R; t++) {
      const src = (g.r - t + R) % R;
      await this.attendBlock(plan, step, q, qPos, qRuns, accs, block, nq, nkv, D, B, `r${src}`);
      // Pass the block on after computing with it: session.run holds the JS
      // thread, so an exchange started earlier could not overlap anyway, and
      // its waiting peer would spin on a core the computation needs.
      if (t < R - 1 && this.ring) {
        const tc = performance.now();
        const [, got] = await Promise.all([this.ring.send((g.r + 1) % R, msg!), this.ring.recv((g.r - 1 + R) % R)]);
        recordSpan(step.timings, `${this.name}.ring`, tc, 'comm');
        msg = got;
        block = unpack(got, B * nkv * D);
      }
    }
    return concatAcc(accs, qRuns, B * nq * D);
  }

  /**
   * Fold one K/V block into the accumulators of every query run. Runs are cut
   * into tiles of at most TILE tokens so that, as in flash attention, tiles
   * entirely in a query tile's causal future are skipped and fully visible
   * ones need no mask: causal attention costs about half of the full square.
   */
  private async attendBlock(plan: SpStepPlan, step: BlockStep, q: Float32Array, qPos: Int32Array, qRuns: Range[], accs: Acc[], block: KvBlock, nq: number, nkv: number, D: number, B: number, tag: string): Promise<void> {
    const rowQ = B * nq * D;
    const rowKv = B * nkv * D;
    const kvTiles = block.runs.flatMap((r) => tiles([[r.start, r.end]])).map(([start, end]) => ({ start, end, ...extent(block.pos.subarray(start, end)) }));
    for (let i = 0; i < qRuns.length; i++) {
      const [qs, qe] = qRuns[i];
      const qp = qPos.subarray(qs, qe);
      const qMin = qp[0];
      const qMax = qp[qp.length - 1];
      for (let j = 0; j < kvTiles.length; j++) {
        const kr = kvTiles[j];
        if (kr.minPos > qMax) continue; // entirely in the causal future
        const T = kr.end - kr.start;
        const visible = kr.maxPos <= qMin;
        const maskKey = visible ? `z:${qe - qs}:${T}` : `m:${tag}:${qs}:${kr.start}:${kr.end}`;
        const mask = shared(plan, maskKey, () => causalMask(qp, block.pos.subarray(kr.start, kr.end), visible));
        const t0 = performance.now();
        const out = await this.core.run({
          q: new ort.Tensor('float32', q.subarray(qs * rowQ, qe * rowQ), [qe - qs, B, nq, D]),
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
    const nq = g.heads[1] - g.heads[0];
    const nkv = g.kvHeads[1] - g.kvHeads[0];
    const qh = U > 1 ? sliceHeadsNew(q, S * B, N, D, g.heads) : q;
    if (R === 1 || plan.owner === g.r) {
      const kh = U > 1 || nkv !== KV ? sliceHeadsNew(k, S * B, KV, D, g.kvHeads) : k;
      const vh = U > 1 || nkv !== KV ? sliceHeadsNew(v, S * B, KV, D, g.kvHeads) : v;
      cache.append(kh, vh, pos, [0], true);
    }
    const accs: Acc[] = [emptyAcc(plan, S, B, nq, D)];
    const block: KvBlock = { k: cache.k.subarray(0, cache.rows * cache.rowFloats), v: cache.v.subarray(0, cache.rows * cache.rowFloats), pos: cache.pos.subarray(0, cache.rows), runs: cache.runs };
    await this.attendBlock(plan, step, qh, pos, [[0, S]], accs, block, nq, nkv, D, B, 'own');
    let o = accs[0].o.data as Float32Array;
    if (R > 1) {
      // merge the ring members' partial results: all-gather (o, lse), then log-sum-exp in fp32
      const lse = accs[0].lse.data as Float32Array;
      const part = new Float32Array(o.length + lse.length);
      part.set(o);
      part.set(lse, o.length);
      const tc = performance.now();
      const all = await this.ring!.allGather(part);
      recordSpan(step.timings, `${this.name}.ring`, tc, 'comm');
      o = mergePartials(all, R, S * B * nq, D);
    }
    if (U === 1) return o;
    const tc = performance.now();
    const all = await this.ulysses!.allGather(o);
    recordSpan(step.timings, `${this.name}.a2a`, tc, 'comm');
    const attn = new Float32Array(S * B * N * D);
    let off = 0;
    for (let uu = 0; uu < U; uu++) {
      const hq = splitEven(N, U, uu);
      const n = S * B * (hq[1] - hq[0]) * D;
      placeHeads(all.subarray(off, off + n), S * B, N, D, hq, attn);
      off += n;
    }
    return attn;
  }

  async release(): Promise<void> {
    await Promise.all([this.qkv.release(), this.out.release()]);
  }
}

/** Longest run of queries or keys one core call takes. */
const TILE = 256;

/** Cut runs into consecutive tiles of at most TILE rows. */
function tiles(runs: Range[]): Range[] {
  const out: Range[] = [];
  for (const [s, e] of runs) for (let a = s; a < e; a += TILE) out.push([a, Math.min(a + TILE, e)]);
  return out;
}

/** Per-step shared tensor, built once for all layers. */
function shared(plan: SpStepPlan, key: string, make: () => ort.Tensor): ort.Tensor {
  let t = plan.cache.get(key);
  if (!t) plan.cache.set(key, (t = make()));
  return t;
}

function positionsOf(past: number, runs: Range[]): Int32Array {
  const out = new Int32Array(runs.reduce((a, [s, e]) => a + e - s, 0));
  let i = 0;
  for (const [s, e] of runs) for (let p = s; p < e; p++) out[i++] = past + p;
  return out;
}

function positionsTensor(B: number, past: number, runs: Range[]): ort.Tensor {
  const pos = positionsOf(past, runs);
  const out = new BigInt64Array(B * pos.length);
  for (let b = 0; b < B; b++) for (let i = 0; i < pos.length; i++) out[b * pos.length + i] = BigInt(pos[i]);
  return new ort.Tensor('int64', out, [B, pos.length]);
}

/** (Sq, T) additive mask: key j visible to query i iff pos_k[j] ≤ pos_q[i]. */
function causalMask(qPos: Int32Array, kPos: Int32Array, allVisible: boolean): ort.Tensor {
  const m = new Float32Array(qPos.length * kPos.length);
  if (!allVisible) {
    for (let i = 0; i < qPos.length; i++) {
      const row = i * kPos.length;
      for (let j = 0; j < kPos.length; j++) if (kPos[j] > qPos[i]) m[row + j] = MASKED;
    }
  }
  return new ort.Tensor('float32', m, [qPos.length, kPos.length]);
}

function emptyAcc(plan: SpStepPlan, rows: number, B: number, nq: number, D: number): Acc {
  return {
    o: shared(plan, `o0:${rows}:${B}:${nq}:${D}`, () => new ort.Tensor('float32', new Float32Array(rows * B * nq * D), [rows, B, nq, D])),
    lse: shared(plan, `l0:${rows}:${B}:${nq}`, () => new ort.Tensor('float32', new Float32Array(rows * B * nq).fill(MASKED), [rows, B, nq])),
  };
}

function concatAcc(accs: Acc[], runs: Range[], rowFloats: number): Float32Array {
  if (accs.length === 1) return accs[0].o.data as Float32Array;
  const out = new Float32Array(runs[runs.length - 1][1] * rowFloats);
  accs.forEach((a, i) => out.set(a.o.data as Float32Array, runs[i][0] * rowFloats));
  return out;
}

/** Copy heads [h0, h1) of every row of `src` (rows × heads × D) into dst at `off`; returns the new offset. */
function sliceHeads(src: Float32Array, rows: number, heads: number, D: number, [h0, h1]: Range, dst: Float32Array, off: number): number {
  const w = (h1 - h0) * D;
  for (let r = 0; r < rows; r++) {
    const s = (r * heads + h0) * D;
    dst.set(src.subarray(s, s + w), off);
    off += w;
  }
  return off;
}

function sliceHeadsNew(src: Float32Array, rows: number, heads: number, D: number, h: Range): Float32Array {
  const dst = new Float32Array(rows * (h[1] - h[0]) * D);
  sliceHeads(src, rows, heads, D, h, dst, 0);
  return dst;
}

/** Inverse of sliceHeads: rows × (h1−h0) × D into heads [h0, h1) of dst (rows × heads × D). */
function placeHeads(src: Float32Array, rows: number, heads: number, D: number, [h0, h1]: Range, dst: Float32Array): void {
  const w = (h1 - h0) * D;
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * w, (r + 1) * w), (r * heads + h0) * D);
}

/**
 * all = R parts, each [o (n·D) | lse (n)]; returns Σ_i e^(lse_i − m) o_i / Σ_i e^(lse_i − m)
 * per row (n = rows × heads), accumulated in fp64 and stored as fp32.
 */
export function mergePartials(all: Float32Array, R: number, n: number, D: number): Float32Array {
  const part = n * D + n;
  const out = new Float32Array(n * D);
  const acc = new Float64Array(D);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let p = 0; p < R; p++) m = Math.max(m, all[p * part + n * D + i]);
    let den = 0;
    acc.fill(0);
    for (let p = 0; p < R; p++) {
      const w = Math.exp(all[p * part + n * D + i] - m);
      den += w;
      const o = p * part + i * D;
      for (let d = 0; d < D; d++) acc[d] += w * all[o + d];
    }
    for (let d = 0; d < D; d++) out[i * D + d] = acc[d] / den;
  }
  return out;
}


const coreSessions = new Map<string, Promise<ort.InferenceSession>>();

registerBlockFactory(async (piece: Piece, env: BlockEnv): Promise<Block | null> => {
  const sp = env.init.plan.sp;
  if (piece.kind !== 'attn' || !sp || sp.size < 2 || sp.impl === 'megatron') return null;
  const { hidden: H, heads: N, kvHeads: KV, headDim: D, eps, first } = piece.s;
  const U = sp.ulysses;
  const R = sp.size / U;
  const u = sp.rank % U;
  const r = Math.floor(sp.rank / U);
  if (N % U !== 0) throw new Error(`ulysses=${U} does not divide the ${N} attention heads`);
  const heads = splitEven(N, U, u);
  const kvHeads = kvHeadRange(N, KV, heads[0], heads[1]);
  const qkv = buildSpQkv(`l${piece.layer}.sp.qkv`, piece.w, { hidden: H, heads: N, kvHeads: KV, headDim: D, eps, first }, env.rope);
  const out = buildSpOut(`l${piece.layer}.sp.out`, piece.w.wo, N * D, H);
  const nq = heads[1] - heads[0];
  const nkv = kvHeads[1] - kvHeads[0];
  const key = `${nq}:${nkv}:${D}`;
  if (!coreSessions.has(key)) coreSessions.set(key, createSession(buildSpCore(nq, nkv, D), env.session));
  return new SpAttentionBlock(
    piece.layer,
    qkv.weightBytes + out.weightBytes,
    await createSession(qkv.bytes, env.session),
    await createSession(out.bytes, env.session),
    await coreSessions.get(key)!,
    { H, N, KV, D, U, R, u, r, heads, kvHeads },
    first,
    U > 1 ? env.group('ulysses') : null,
    R > 1 ? env.group('ring') : null,
    sp.rank,
    env.init.plan.tp.size > 1 ? env.group('tp') : null,
  );
});
