/**
 * Ring attention (Liu et al. 2023) over the R members of a ring: each rank
 * keeps the K/V of its share of the tokens (KvCache); in a prefill, R rounds
 * pass every member's whole cache one step round the ring (ringPass), and
 * each rank folds every block it sees into its queries' running (o, lse)
 * with the log-sum-exp merge (the core graph, sp/graphs.ts buildSpCore). In
 * decode, each member attends to its own cache and the partial results are
 * merged across the ring (mergeOverRing: all-gather of (o, lse), then
 * mergePartials).
 *
 * Bytes: a pass sends the whole cache, 4·(2 + 2·runs + rows + 2·rows·B·nkv·D)
 * bytes (header, run table, positions, K, V), R−1 times per layer; decode
 * all-gathers S·B·nq·(D+1) floats per member (sp/comm.ts).
 */
import type { Communicator } from '../../comm/communicator';
import type { BlockState } from '../../runtime/batch';

/** One contiguous group of cache rows and the positions it covers. */
export interface Run {
  start: number;
  end: number;
  minPos: number;
  maxPos: number;
}

/** A K/V block to attend to: a rank's own cache or one received from the ring. */
export interface KvBlock {
  k: Float32Array;
  v: Float32Array;
  pos: Int32Array;
  runs: Run[];
}

/** Smallest and largest position of a run (a loop: runs can be longer than spread arguments allow). */
export function extent(pos: Int32Array): { minPos: number; maxPos: number } {
  let minPos = Infinity;
  let maxPos = -Infinity;
  for (let i = 0; i < pos.length; i++) {
    if (pos[i] < minPos) minPos = pos[i];
    if (pos[i] > maxPos) maxPos = pos[i];
  }
  return { minPos, maxPos };
}

/** The K/V rows (T, B, nkv, D) this rank holds for one layer, with each row's absolute position. */
export class KvCache implements BlockState {
  k = new Float32Array(0);
  v = new Float32Array(0);
  pos = new Int32Array(0);
  rows = 0;
  runs: Run[] = [];
  constructor(readonly rowFloats: number) {}

  kvBytes(): number {
    return 2 * this.rows * this.rowFloats * 4;
  }

  /** The cache as a block to attend to (views, no copy). */
  block(): KvBlock {
    return { k: this.k.subarray(0, this.rows * this.rowFloats), v: this.v.subarray(0, this.rows * this.rowFloats), pos: this.pos.subarray(0, this.rows), runs: this.runs };
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

/** A packed cache back into a block (views into the message). */
export function unpack(msg: Float32Array, rowFloats: number): KvBlock {
  const rows = msg[0];
  const nRuns = msg[1];
  const pos = new Int32Array(rows);
  const p0 = 2 + 2 * nRuns;
  for (let i = 0; i < rows; i++) pos[i] = msg[p0 + i];
  const runs: Run[] = [];
  for (let i = 0; i < nRuns; i++) {
    const start = msg[2 + 2 * i];
    const end = msg[3 + 2 * i];
    runs.push({ start, end, ...extent(pos.subarray(start, end)) });
  }
  const head = p0 + rows;
  return { pos, runs, k: msg.subarray(head, head + rows * rowFloats), v: msg.subarray(head + rows * rowFloats, head + 2 * rows * rowFloats) };
}

/** One round: send the block I hold to the next ring member, receive the previous member's. */
export async function ringPass(ring: Communicator, msg: Float32Array): Promise<Float32Array> {
  const R = ring.size;
  const r = ring.rank;
  const [, got] = await Promise.all([ring.send((r + 1) % R, msg), ring.recv((r - 1 + R) % R)]);
  return got;
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

/** Decode: every ring member's partial (o, lse) over its own cache → the merged o, on every member. */
export async function mergeOverRing(ring: Communicator, o: Float32Array, lse: Float32Array, n: number, D: number): Promise<Float32Array> {
  const part = new Float32Array(o.length + lse.length);
  part.set(o);
  part.set(lse, o.length);
  return mergePartials(await ring.allGather(part), ring.size, n, D);
}
