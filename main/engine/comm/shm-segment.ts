/**
 * One group's shared-memory segment: its layout, and the waiting that every
 * shm collective and mailbox is built from. (Collectives: shm.ts; send/recv:
 * shm-mailbox.ts.)
 *
 * Layout (n ranks; every control line is 128 bytes — a cache line and the
 * neighbour the prefetcher pulls with it — so ranks never false-share; all
 * words int32):
 *   header      [magic, version, n, slotBytes, chunkBytes, chunks, joined, 0…]
 *   rank r      [arrive, arriveSleepers, bell, bellSleepers, pid, state, 0…]
 *   pair a→b    [written, read, (tag, bytes, chunkBytes) × chunks]      n·n lines
 *   slots       rank r, parity p: [counts: n int32, padded to 128 B][slotBytes of data]
 *   mailboxes   pair a→b, chunk k: chunkBytes each
 *
 * arrive[r] is rank r's generation: every collective phase bumps it by one,
 * identically on every rank (same calls, same order), so "peer r has reached
 * phase g" is arrive[r] ≥ g (compared modulo 2^32: no ABA). Slot buffers
 * alternate parity per window, so a window's buffer is rewritten only after
 * every peer has posted a later phase — i.e. has finished reading it.
 *
 * Waiting: spin on Atomics.load for up to spinUs (peers usually arrive within
 * microseconds; the spin yields the core every few µs, see spin()), then
 * sleep on the futex of the word (the waker calls futexWake only when the
 * sleepers word says someone sleeps): on this thread for up to blockMs, then
 * on a libuv pool thread so the rank's event loop (control messages,
 * heartbeats) runs while a slow peer is awaited, until timeoutMs.
 * Every slice checks whether the awaited peers are still alive (pid, state),
 * so a dead rank is reported within ~50 ms instead of at the timeout.
 */
import { CommError, peerError, timeoutError } from './communicator';
import type { CommOp } from './communicator';
import type { ShmAddon } from './shm-native';

const SHM_MAGIC = 0x50534d31;
const SHM_VERSION = 1;
/** 128 bytes: a cache line and its prefetch buddy, so two ranks' words never share either */
const LINE = 128;
const W = LINE / 4;
/** header words, in order: magic, version, n, slotBytes, chunkBytes, chunks, joined */
const H_JOINED = 6;
const R_ARRIVE = 0;
const R_ARRIVE_SLEEP = 1;
export const R_BELL = 2;
export const R_BELL_SLEEP = 3;
const R_PID = 4;
const R_STATE = 5;
export const P_WRITTEN = 0;
export const P_READ = 1;
const MAX_CHUNKS = 4;
const STATE_LIVE = 0;
const STATE_CLOSED = 1;
const STATE_FAILED = 2;
const SLICE_MS = 50;
const YIELD_US = 4;

export interface ShmParams {
  slotBytes: number;
  chunkBytes: number;
  chunks: number;
  spinUs: number;
  blockMs: number;
  timeoutMs: number;
}

export interface ShmLayout {
  bytes: number;
  rankLine: (r: number) => number;
  pairLine: (a: number, b: number) => number;
  slotHdrBytes: number;
  slot: (r: number, parity: number) => number;
  box: (a: number, b: number, k: number) => number;
}

const align = (x: number, a: number) => Math.ceil(x / a) * a;

export function shmLayout(n: number, p: Pick<ShmParams, 'slotBytes' | 'chunkBytes' | 'chunks'>): ShmLayout {
  const ranks = LINE;
  const pairs = ranks + n * LINE;
  const slotHdrBytes = align(4 * n, LINE);
  const slotStride = slotHdrBytes + p.slotBytes;
  const slots = pairs + n * n * LINE;
  const boxes = slots + 2 * n * slotStride;
  return {
    bytes: boxes + n * n * p.chunks * p.chunkBytes,
    rankLine: (r) => ranks + r * LINE,
    pairLine: (a, b) => pairs + (a * n + b) * LINE,
    slotHdrBytes,
    slot: (r, parity) => slots + (2 * r + parity) * slotStride,
    box: (a, b, k) => boxes + ((a * n + b) * p.chunks + k) * p.chunkBytes,
  };
}

export function checkShmParams(p: ShmParams): void {
  const bad = (what: string) => {
    throw new CommError(`shared-memory setup: ${what}`);
  };
  if (p.slotBytes < 4096 || p.slotBytes % LINE) bad(`slotBytes must be a multiple of ${LINE} and at least 4096, got ${p.slotBytes}`);
  if (p.chunkBytes < 4096 || p.chunkBytes % LINE) bad(`mailbox chunkBytes must be a multiple of ${LINE} and at least 4096, got ${p.chunkBytes}`);
  if (!(p.chunks >= 1 && p.chunks <= MAX_CHUNKS)) bad(`mailbox chunks must be 1…${MAX_CHUNKS}, got ${p.chunks}`);
}

/** Host side: stamp a freshly created segment so ranks can check they agree on its layout. */
export function writeShmHeader(ab: ArrayBuffer, n: number, p: ShmParams): void {
  const h = new Int32Array(ab, 0, W);
  h.set([SHM_MAGIC, SHM_VERSION, n, p.slotBytes, p.chunkBytes, p.chunks, 0]);
}

export class ShmSegment {
  readonly ctrl: Int32Array;
  readonly layout: ShmLayout;
  private readonly pids: number[] = [];

  constructor(
    readonly ab: ArrayBuffer,
    readonly n: number,
    readonly me: number,
    readonly p: ShmParams,
    readonly native: ShmAddon,
    readonly group: string,
  ) {
    this.layout = shmLayout(n, p);
    this.ctrl = new Int32Array(ab, 0, this.layout.slot(0, 0) / 4);
    const h = this.ctrl;
    const want = [SHM_MAGIC, SHM_VERSION, n, p.slotBytes, p.chunkBytes, p.chunks];
    if (want.some((v, i) => h[i] !== v)) {
      throw new CommError(`shared-memory segment of group '${group}' has header [${Array.from(h.subarray(0, 6))}], expected [${want}]: the host and this rank run different ParaLab versions or options`, 'join', group);
    }
    Atomics.store(h, this.rankWord(me, R_PID), process.pid);
    Atomics.store(h, this.rankWord(me, R_STATE), STATE_LIVE);
  }

  rankWord(r: number, w: number): number {
    return this.layout.rankLine(r) / 4 + w;
  }

  pairWord(a: number, b: number, w: number): number {
    return this.layout.pairLine(a, b) / 4 + w;
  }

  /** Count this rank in; true for the last of the n ranks (it unlinks the file). */
  join(): boolean {
    return Atomics.add(this.ctrl, H_JOINED, 1) === this.n - 1;
  }

  /** Tell the peers this rank is gone, and wake any that sleep waiting for it. */
  markClosed(failed: boolean): void {
    Atomics.store(this.ctrl, this.rankWord(this.me, R_STATE), failed ? STATE_FAILED : STATE_CLOSED);
    this.native.futexWake(this.ab, this.rankWord(this.me, R_ARRIVE) * 4, 0x7fffffff);
    for (let r = 0; r < this.n; r++) this.ring(this.rankWord(r, R_BELL), this.rankWord(r, R_BELL_SLEEP), true);
  }

  // ── posting ───────────────────────────────────────────────────────────

  /** Store `value` into ctrl[idx] and wake whoever sleeps on it. */
  publish(idx: number, value: number, sleepIdx: number): void {
    Atomics.store(this.ctrl, idx, value);
    if (Atomics.load(this.ctrl, sleepIdx) > 0) this.native.futexWake(this.ab, idx * 4, 0x7fffffff);
  }

  /** Bump a counter word (a doorbell) and wake its sleepers; force: wake even if none was seen. */
  ring(idx: number, sleepIdx: number, force = false): void {
    Atomics.add(this.ctrl, idx, 1);
    if (force || Atomics.load(this.ctrl, sleepIdx) > 0) this.native.futexWake(this.ab, idx * 4, 0x7fffffff);
  }

  /** This rank reached generation g. */
  arrive(g: number): void {
    this.publish(this.rankWord(this.me, R_ARRIVE), g, this.rankWord(this.me, R_ARRIVE_SLEEP));
  }

  // ── waiting for peers' generations ────────────────────────────────────

  private reached(r: number, g: number): boolean {
    return ((Atomics.load(this.ctrl, this.rankWord(r, R_ARRIVE)) - g) | 0) >= 0;
  }

  /** Spin, then sleep synchronously (up to blockMs) until every peer reached g. False: still waiting. */
  waitSync(g: number, op: CommOp, t0: number): boolean {
    for (let r = 0; r < this.n; r++) {
      if (r === this.me || this.reached(r, g)) continue;
      if (!this.spin(r, g) && !this.sleepSync(r, g, op, t0)) return false;
    }
    return true;
  }

  /**
   * Busy-wait up to spinUs, yielding the core every few µs: when the peer
   * shares this core (more ranks than cores, or a busy machine) the yield lets
   * it run now instead of after our spin; on an idle core it returns at once.
   * (An adaptive budget that shrinks after failed spins was measured worse:
   * once waits go through the futex, the wake-up latency (~20 µs here) makes
   * the next skew too long for the shrunken spin, and it never recovers.)
   */
  private spin(r: number, g: number): boolean {
    const t0 = performance.now();
    const end = t0 + this.p.spinUs / 1000;
    let nextYield = t0 + YIELD_US / 1000;
    for (;;) {
      for (let i = 0; i < 64; i++) if (this.reached(r, g)) return true;
      const now = performance.now();
      if (now > end) return false;
      if (now > nextYield) {
        this.native.yieldCpu();
        nextYield = now + YIELD_US / 1000;
      }
    }
  }

  private sleepSync(r: number, g: number, op: CommOp, t0: number): boolean {
    const idx = this.rankWord(r, R_ARRIVE);
    const sleepIdx = this.rankWord(r, R_ARRIVE_SLEEP);
    const until = t0 + this.p.blockMs;
    while (!this.reached(r, g)) {
      const left = until - performance.now();
      if (left <= 0) return false;
      Atomics.add(this.ctrl, sleepIdx, 1);
      const v = Atomics.load(this.ctrl, idx);
      if (((v - g) | 0) < 0) this.native.futexWait(this.ab, idx * 4, v, Math.min(left, SLICE_MS));
      Atomics.sub(this.ctrl, sleepIdx, 1);
      if (!this.reached(r, g)) this.checkAlive([r], op, t0);
    }
    return true;
  }

  /** The rest of a wait, off the event loop, until every peer reached g or the timeout. */
  async waitAsync(g: number, op: CommOp, t0: number): Promise<void> {
    for (let r = 0; r < this.n; r++) {
      if (r === this.me) continue;
      const idx = this.rankWord(r, R_ARRIVE);
      const sleepIdx = this.rankWord(r, R_ARRIVE_SLEEP);
      while (!this.reached(r, g)) {
        Atomics.add(this.ctrl, sleepIdx, 1);
        const v = Atomics.load(this.ctrl, idx);
        if (((v - g) | 0) < 0) await this.native.futexWaitAsync(this.ab, idx * 4, v, SLICE_MS);
        Atomics.sub(this.ctrl, sleepIdx, 1);
        const missing = this.missing(g);
        if (missing.length) this.checkAlive(missing, op, t0);
      }
    }
  }

  private missing(g: number): number[] {
    return Array.from({ length: this.n }, (_, r) => r).filter((r) => r !== this.me && !this.reached(r, g));
  }

  // ── liveness ──────────────────────────────────────────────────────────

  /** Throw (and tell the peers this rank failed) if an awaited peer is gone or the wait timed out. */
  checkAlive(peers: number[], op: CommOp, t0: number): void {
    const gone = peers.filter((r) => !this.alive(r));
    const err = gone.length
      ? peerError(op, this.group, gone, 'exited or left the group before arriving (see that rank for the cause)')
      : performance.now() - t0 > this.p.timeoutMs
        ? timeoutError(op, this.group, peers, this.p.timeoutMs)
        : null;
    if (err) {
      this.markClosed(true);
      throw err;
    }
  }

  alive(r: number): boolean {
    if (Atomics.load(this.ctrl, this.rankWord(r, R_STATE)) !== STATE_LIVE) return false;
    const pid = this.pids[r] || (this.pids[r] = Atomics.load(this.ctrl, this.rankWord(r, R_PID)));
    if (!pid) return true;
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
}
