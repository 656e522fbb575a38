/**
 * send / recv over shared memory: one mailbox per ordered pair a→b of a
 * group's segment, a ring of `chunks` buffers of chunkBytes each. A message
 * goes through in chunkBytes pieces; each piece carries (tag, total bytes,
 * piece bytes), so the receiver need not know the size. Bytes moved: the
 * message, once (one copy in, one copy out).
 *
 * The sender waits only when all chunk buffers are full (the receiver is
 * `chunks` pieces behind); the receiver waits for the next piece. Waits spin
 * for spinUs, then sleep off the event loop on this rank's doorbell word: a
 * peer rings it after every piece it writes to us or reads from us, so one
 * pool-thread futex wait covers all of this rank's pending sends and receives
 * in the group. Every access to the segment is a call into the addon (words,
 * chunk copies): the mapping is never visible here. Messages with another tag than the one asked for are set
 * aside (copied out) until asked for: matching is by (peer, tag), in order.
 */
import { CommError, checkPeerTag, peerError, uninitF32 } from './communicator';
import type { Ledger } from './ledger';
import { P_READ, P_WRITTEN, R_BELL, R_BELL_SLEEP } from './shm-segment';
import type { ShmSegment } from './shm-segment';

const SLICE_MS = 50;
const MAX_MESSAGE = 0x7fffffff;

interface Waiter {
  ready: () => boolean;
  peer: number;
  op: 'send' | 'recv';
  t0: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class ShmMailbox {
  private readonly sendTail = new Map<number, Promise<void>>();
  private readonly recvTail = new Map<number, Promise<unknown>>();
  private readonly stash = new Map<string, Float32Array[]>();
  private readonly waiters = new Set<Waiter>();
  private pumping = false;
  private closed: Error | null = null;

  constructor(
    private readonly seg: ShmSegment,
    private readonly ledger: Ledger,
  ) {}

  private get me(): number {
    return this.seg.me;
  }

  send(peer: number, data: Float32Array, tag: number): Promise<void> {
    const bad = this.check(peer, tag, 'send') ?? (data.byteLength > MAX_MESSAGE ? new CommError(`send in group '${this.seg.group}': ${data.byteLength} bytes is over the 2 GiB message limit; split it`, 'send', this.seg.group) : null);
    if (bad) return Promise.reject(bad);
    const prev = this.sendTail.get(peer);
    const next = prev ? prev.then(() => this.sendNow(peer, data, tag)) : this.sendNow(peer, data, tag);
    this.sendTail.set(peer, next);
    const clear = () => {
      if (this.sendTail.get(peer) === next) this.sendTail.delete(peer);
    };
    next.then(clear, clear);
    return next;
  }

  recv(peer: number, tag: number): Promise<Float32Array> {
    const bad = this.check(peer, tag, 'recv');
    if (bad) return Promise.reject(bad);
    const prev = this.recvTail.get(peer);
    const next = prev ? prev.then(() => this.recvNow(peer, tag), () => this.recvNow(peer, tag)) : this.recvNow(peer, tag);
    this.recvTail.set(peer, next);
    const clear = () => {
      if (this.recvTail.get(peer) === next) this.recvTail.delete(peer);
    };
    next.then(clear, clear);
    return next;
  }

  /** Fail every pending send / recv (the world is closing). */
  close(why: Error): void {
    this.closed = why;
    for (const w of this.waiters) w.reject(why);
    this.waiters.clear();
  }

  private check(peer: number, tag: number, op: 'send' | 'recv'): Error | null {
    return this.closed ?? checkPeerTag(op, this.seg.group, this.seg.n, this.me, peer, tag);
  }

  // ── the pair's words ──────────────────────────────────────────────────

  private word(a: number, b: number, w: number): number {
    return this.seg.pairWord(a, b, w);
  }

  private load(i: number): number {
    return this.seg.load(i);
  }

  /** chunks written a→b minus chunks read, modulo 2^32 */
  private inFlight(a: number, b: number): number {
    return (this.load(this.word(a, b, P_WRITTEN)) - this.load(this.word(a, b, P_READ))) | 0;
  }

  private ringBell(r: number): void {
    this.seg.ring(this.seg.rankWord(r, R_BELL), this.seg.rankWord(r, R_BELL_SLEEP));
  }

  // ── sending ───────────────────────────────────────────────────────────

  private async sendNow(peer: number, data: Float32Array, tag: number): Promise<void> {
    const t0 = performance.now();
    const { chunks, chunkBytes } = this.seg.p;
    const cap = chunkBytes / 4;
    const me = this.me;
    const seg = this.seg;
    let off = 0;
    do {
      if (this.inFlight(me, peer) >= chunks) await this.waitFor(() => this.inFlight(me, peer) < chunks, peer, 'send', t0);
      const written = this.load(this.word(me, peer, P_WRITTEN));
      const k = (written >>> 0) % chunks;
      const len = Math.min(cap, data.length - off);
      seg.native.boxWrite(seg.h, me, peer, k, data, off, len);
      const meta = this.word(me, peer, 2 + 3 * k);
      seg.store(meta, tag);
      seg.store(meta + 1, data.byteLength);
      seg.store(meta + 2, len * 4);
      seg.store(this.word(me, peer, P_WRITTEN), (written + 1) | 0);
      this.ringBell(peer);
      off += len;
    } while (off < data.length);
    this.ledger.record('send', this.seg.group, data.byteLength, 0, performance.now() - t0, 0);
  }

  // ── receiving ─────────────────────────────────────────────────────────

  private async recvNow(peer: number, tag: number): Promise<Float32Array> {
    const t0 = performance.now();
    let wait = -1;
    for (;;) {
      const kept = this.stash.get(`${peer}:${tag}`)?.shift();
      if (kept) return this.received(kept, t0, Math.max(wait, 0));
      if (this.inFlight(peer, this.me) <= 0) await this.waitFor(() => this.inFlight(peer, this.me) > 0, peer, 'recv', t0);
      if (wait < 0) wait = performance.now() - t0;
      const [msgTag, msg] = await this.readMessage(peer, t0);
      if (msgTag === tag) return this.received(msg, t0, wait);
      const key = `${peer}:${msgTag}`;
      this.stash.set(key, [...(this.stash.get(key) ?? []), msg]);
    }
  }

  private received(msg: Float32Array, t0: number, wait: number): Float32Array {
    this.ledger.record('recv', this.seg.group, 0, msg.byteLength, performance.now() - t0, wait);
    return msg;
  }

  /** Copy one whole message out of the a→me ring (its first piece is there already). */
  private async readMessage(peer: number, t0: number): Promise<[number, Float32Array]> {
    const chunks = this.seg.p.chunks;
    const seg = this.seg;
    const readIdx = this.word(peer, this.me, P_READ);
    let out: Float32Array | null = null;
    let tag = 0;
    let off = 0;
    for (;;) {
      if (this.inFlight(peer, this.me) <= 0) await this.waitFor(() => this.inFlight(peer, this.me) > 0, peer, 'recv', t0);
      const read = this.load(readIdx);
      const k = (read >>> 0) % chunks;
      const meta = this.word(peer, this.me, 2 + 3 * k);
      if (!out) {
        tag = seg.load(meta);
        out = uninitF32(seg.load(meta + 1) / 4);
      }
      const len = seg.load(meta + 2) / 4;
      seg.native.boxRead(seg.h, peer, this.me, k, out, off, len);
      off += len;
      seg.store(readIdx, (read + 1) | 0);
      this.ringBell(peer);
      if (off >= out.length) return [tag, out];
    }
  }

  // ── waiting: spin, then one doorbell sleep for everything pending ─────

  private waitFor(ready: () => boolean, peer: number, op: 'send' | 'recv', t0: number): Promise<void> {
    const end = performance.now() + this.seg.p.spinUs / 1000;
    do {
      for (let i = 0; i < 32; i++) if (ready()) return Promise.resolve();
    } while (performance.now() < end);
    return new Promise((resolve, reject) => {
      this.waiters.add({ ready, peer, op, t0, resolve, reject });
      if (!this.pumping) void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    const seg = this.seg;
    const bell = seg.rankWord(this.me, R_BELL);
    try {
      while (this.waiters.size > 0) {
        const rung = seg.load(bell);
        this.settle();
        if (this.waiters.size === 0) break;
        // the addon counts itself in the bell's sleepers word while it sleeps
        await seg.native.bellWaitAsync(seg.h, bell, rung, SLICE_MS);
        this.expire();
      }
    } finally {
      this.pumping = false;
    }
  }

  private settle(): void {
    for (const w of this.waiters) {
      if (w.ready()) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  private expire(): void {
    for (const w of this.waiters) {
      if (w.ready()) continue;
      const gone = !this.seg.alive(w.peer);
      if (!gone && performance.now() - w.t0 <= this.seg.p.timeoutMs) continue;
      this.waiters.delete(w);
      const why = gone
        ? 'exited or left the group (see that rank for the cause)'
        : `sent nothing for ${Math.round(this.seg.p.timeoutMs / 100) / 10} s (a peer died or is stuck; if this wait is expected, raise --timeout)`;
      w.reject(peerError(w.op, this.seg.group, [w.peer], w.op === 'send' ? `${why.replace('sent nothing', 'read nothing')}` : why));
    }
  }
}
