/**
 * One group's shared-memory segment: its layout, and the words the mailboxes
 * use. The mapping itself lives in the addon (native/shm.c) behind a handle;
 * this side never sees it as memory. (Collectives: shm.ts, run inside the
 * addon; send/recv: shm-mailbox.ts.)
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
 * Waiting (in the addon, for collectives): spin for up to spinUs (peers
 * usually arrive within microseconds),
 * then sleep on the futex of the word (the waker calls wake only when the
 * sleepers word says someone sleeps): on this thread until blockMs after the
 * op began, then on a libuv pool thread so the rank's event loop (control
 * messages) runs while a slow peer is awaited, until timeoutMs. Every slice
 * checks whether the awaited peer is still alive (pid, state), so a dead rank
 * is reported within ~50 ms instead of at the timeout.
 */
import { CommError } from './communicator';
import type { ShmAddon, ShmHandle } from './shm-native';

const SHM_MAGIC = 0x50534d31;
const SHM_VERSION = 1;
/** 128 bytes: a cache line and its prefetch buddy, so two ranks' words never share either */
const LINE = 128;
export const R_BELL = 2;
export const R_BELL_SLEEP = 3;
export const P_WRITTEN = 0;
export const P_READ = 1;
const MAX_CHUNKS = 4;

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


/** Host side: the header words a freshly created segment starts with, so ranks can check they agree on its layout. */
export function shmHeader(n: number, p: ShmParams): Int32Array {
  return Int32Array.of(SHM_MAGIC, SHM_VERSION, n, p.slotBytes, p.chunkBytes, p.chunks, 0);
}

export class ShmSegment {
  readonly h: ShmHandle;
  readonly layout: ShmLayout;

  constructor(
    file: string,
    readonly n: number,
    readonly me: number,
    readonly p: ShmParams,
    readonly native: ShmAddon,
    readonly group: string,
  ) {
    this.layout = shmLayout(n, p);
    this.h = native.open(file, n, me, Float64Array.of(p.slotBytes, p.chunkBytes, p.chunks, p.spinUs, p.blockMs, p.timeoutMs));
    const h = new Int32Array(6);
    native.header(this.h, h);
    const want = [SHM_MAGIC, SHM_VERSION, n, p.slotBytes, p.chunkBytes, p.chunks];
    if (want.some((v, i) => h[i] !== v)) {
      native.close(this.h);
      throw new CommError(`shared-memory segment of group '${group}' has header [${Array.from(h)}], expected [${want}]: the host and this rank run different ParaLab versions or options`, 'join', group);
    }
  }

  rankWord(r: number, w: number): number {
    return this.layout.rankLine(r) / 4 + w;
  }

  pairWord(a: number, b: number, w: number): number {
    return this.layout.pairLine(a, b) / 4 + w;
  }

  /** Record this rank (pid, live) and count it in; true for the last of the n ranks (it unlinks the file). */
  join(): boolean {
    return this.native.start(this.h);
  }

  /** Tell the peers this rank is gone, and wake any that sleep waiting for it. */
  markClosed(failed: boolean): void {
    this.native.markClosed(this.h, failed);
  }

  /** Unmap (after markClosed); later calls on this segment throw. */
  unmap(): void {
    this.native.close(this.h);
  }

  load(word: number): number {
    return this.native.load(this.h, word);
  }

  store(word: number, value: number): void {
    this.native.store(this.h, word, value);
  }

  /** Bump a counter word (a doorbell) and wake its sleepers; force: wake even if none was seen. */
  ring(idx: number, sleepIdx: number, force = false): void {
    this.native.ring(this.h, idx, sleepIdx, force);
  }

  alive(r: number): boolean {
    return this.native.alive(this.h, r);
  }
}
