/**
 * Collectives over one group's shared-memory segment (layout: shm-segment.ts;
 * send/recv: shm-mailbox.ts). Each collective is one call into the addon
 * (native/shm.c), which copies the caller's arrays into the segment, waits
 * (spin, futex), reduces and copies out: no event-loop turn, no promise and
 * no allocation between the phases, and no external ArrayBuffer, so the same
 * path runs in Node and in Electron. A call that still waits blockMs after
 * it began returns BLOCKED; this side then awaits a pool-thread sleep and
 * repeats the call, which resumes where it stopped. Made for 2–8 ranks on one host:
 * every rank posts into its own slot, one generation bump tells the peers,
 * and each reads what it needs straight from the others' slots — one or two
 * synchronisations per window instead of a ring's 2(n−1) steps. Buffers
 * larger than a slot go through in windows of slotBytes (alternating between
 * two slot buffers, so memory stays bounded and no slot is rewritten before
 * every peer has read it).
 *
 *   allReduce     window = slotBytes/n of every rank's chunk (chunks: evenCounts).
 *                 post the pieces the others own → sync → sum my piece over all
 *                 slots in rank order, into my slot and my buffer → sync → copy
 *                 the others' sums. Each chunk is summed once, by its owner, so
 *                 every rank ends with the same bits.
 *   reduceScatter the first half of that; allGather / broadcast: post → sync → copy.
 *   allToAllV     post my pieces for the others, with my send counts in the slot
 *                 header → sync → each rank copies its piece from every slot.
 *   barrier       one sync.
 * Bytes (ledger): the closed forms in communicator.ts, with a "send" being
 * bytes a peer reads from this rank's slot and a "recv" bytes this rank reads
 * from the peers' slots — exactly what this algorithm copies.
 */
import { CommError, checkCounts, closedForm, evenCounts, offsets, outArray, peerError, timeoutError, uninitF32 } from './communicator';
import type { CommOp, Communicator } from './communicator';
import type { Ledger } from './ledger';
import { ShmMailbox } from './shm-mailbox';
import { IO_HEAD, SHM } from './shm-native';
import type { ShmStatus } from './shm-native';
import type { ShmSegment } from './shm-segment';

export class ShmGroup implements Communicator {
  readonly rank: number;
  readonly size: number;
  private readonly mail: ShmMailbox;
  /** the addon's scalar results: [ms, waitMs, floats needed, peer, …, one length / count per rank] */
  private readonly io: Float64Array;
  private busy: CommOp | null = null;

  constructor(
    readonly name: string,
    private readonly seg: ShmSegment,
    private readonly ledger: Ledger,
  ) {
    this.rank = seg.me;
    this.size = seg.n;
    this.io = new Float64Array(IO_HEAD + seg.n);
    this.mail = new ShmMailbox(seg, ledger);
  }

  close(why: Error): void {
    this.mail.close(why);
  }

  // ── driving one native collective ─────────────────────────────────────

  /**
   * Call `call` until it is done: after BLOCKED sleep off the event loop and
   * repeat; after NEED_OUT hand the learned length to `need` and repeat.
   * Then record the call in the ledger (bytes: the closed form of `bytes()`).
   */
  private async drive(op: CommOp, call: () => ShmStatus, bytes: () => { sent: number; recv: number }, need?: (floats: number) => void, fail?: (s: ShmStatus) => CommError | null): Promise<void> {
    if (this.busy) throw new CommError(`${op} in group '${this.name}' started while ${this.busy} is still running: await each collective before the next on the same group`, op, this.name);
    this.busy = op;
    let midway = false; // the addon holds this op's place (BLOCKED / NEED_OUT)
    try {
      for (;;) {
        const s = call();
        midway = s === SHM.BLOCKED || s === SHM.NEED_OUT;
        if (s === SHM.DONE) break;
        if (s === SHM.BLOCKED) await this.seg.native.waitAsync(this.seg.h);
        else if (s === SHM.NEED_OUT && need) need(this.io[2]);
        else throw fail?.(s) ?? this.failure(op, s);
      }
    } catch (e) {
      // anything thrown between two calls of one op leaves its peers waiting at a generation this rank will not post
      if (midway) this.seg.native.abort(this.seg.h);
      throw e instanceof CommError ? e : new CommError(`${op} in group '${this.name}': ${(e as Error).message}`, op, this.name);
    } finally {
      this.busy = null;
    }
    const b = bytes();
    this.ledger.record(op, this.name, b.sent, b.recv, this.io[0], this.io[1]);
  }

  private learned(): number[] {
    return Array.from(this.io.subarray(IO_HEAD, IO_HEAD + this.size));
  }

  private failure(op: CommOp, s: ShmStatus): CommError {
    const peer = this.io[3];
    switch (s) {
      case SHM.PEER_GONE:
        return peerError(op, this.name, [peer], 'exited or left the group before arriving (see that rank for the cause)');
      case SHM.TIMEOUT:
        return timeoutError(op, this.name, [peer], this.seg.p.timeoutMs);
      case SHM.BAD_LENGTH:
        return new CommError(`${op} in group '${this.name}': ranks passed buffers of [${this.learned().join(', ')}] floats; every rank must pass the same length`, op, this.name);
      case SHM.CLOSED:
        return new CommError(`${op} in group '${this.name}': this rank left the group after an earlier failure (see the first error)`, op, this.name);
      default:
        return new CommError(`${op} in group '${this.name}': the shared-memory addon answered status ${s}`, op, this.name);
    }
  }

  /**
   * A collective whose result length the peers tell (all-gather, all-to-all):
   * the output is `into`, or sized from `want` when given, else allocated when
   * the addon has learned the lengths (NEED_OUT); the learned lengths must equal `want`.
   */
  private async learning(op: 'all_gather' | 'all_to_all', want: number[] | null | undefined, into: Float32Array | undefined, they: string, wantName: string, call: (out: Float32Array | null) => ShmStatus, bytes: (learned: number[]) => { sent: number; recv: number }): Promise<Float32Array> {
    let out: Float32Array | null = into ?? (want ? uninitF32(offsets(want)[this.size]) : null);
    const mismatch = () => (want && this.learned().some((x, r) => x !== want[r]) ? new CommError(`${op} in group '${this.name}': ${they} [${this.learned().join(', ')}] floats but ${wantName} say [${want.join(', ')}]`, op, this.name) : null);
    await this.drive(
      op,
      () => call(out),
      () => bytes(this.learned()),
      (floats) => (out = uninitF32(floats)),
      (s) => (s === SHM.BAD_OUT ? (mismatch() ?? new CommError(`${op} in group '${this.name}': out holds ${out?.length} floats, the result has ${this.io[2]}`, op, this.name)) : null),
    );
    const bad = mismatch();
    if (bad) throw bad;
    return out!;
  }

  // ── collectives ───────────────────────────────────────────────────────

  async allReduce(buf: Float32Array): Promise<void> {
    const { seg, io } = this;
    await this.drive(
      'all_reduce',
      () => seg.native.allReduce(seg.h, io, buf),
      () => closedForm.allReduce(this.size, this.rank, buf.length),
    );
  }

  async reduceScatter(buf: Float32Array, counts?: number[], into?: Float32Array): Promise<Float32Array> {
    const { size: n, rank: me, seg, io } = this;
    const c = counts ?? evenCounts(buf.length, n);
    checkCounts('reduce_scatter', this.name, c, n, buf.length);
    const out = outArray('reduce_scatter', this.name, c[me], into);
    const cc = Int32Array.from(c);
    await this.drive(
      'reduce_scatter',
      () => seg.native.reduceScatter(seg.h, io, buf, cc, out),
      () => closedForm.reduceScatter(n, me, c),
    );
    return out;
  }

  async allGather(chunk: Float32Array, counts?: number[], into?: Float32Array): Promise<Float32Array> {
    const { size: n, rank: me, seg, io } = this;
    if (counts) {
      checkCounts('all_gather', this.name, counts, n);
      if (counts[me] !== chunk.length) throw new CommError(`all_gather in group '${this.name}': rank ${me} holds ${chunk.length} floats but counts[${me}] = ${counts[me]}`, 'all_gather', this.name);
    }
    return this.learning('all_gather', counts, into, 'ranks hold', 'counts', (out) => seg.native.allGather(seg.h, io, chunk, out), (c) => closedForm.allGather(n, me, c));
  }

  async allToAllV(send: Float32Array, sendCounts: number[], recvCounts: number[] | null, into?: Float32Array): Promise<Float32Array> {
    const { size: n, rank: me, seg, io } = this;
    checkCounts('all_to_all', this.name, sendCounts, n, send.length);
    if (recvCounts) checkCounts('all_to_all', this.name, recvCounts, n);
    const sc = Int32Array.from(sendCounts);
    return this.learning('all_to_all', recvCounts, into, 'peers send', 'recvCounts', (out) => seg.native.allToAllV(seg.h, io, send, sc, out), (c) => closedForm.allToAllV(me, sendCounts, c));
  }

  async broadcast(buf: Float32Array, root: number): Promise<void> {
    const { size: n, rank: me, seg, io } = this;
    if (!Number.isInteger(root) || root < 0 || root >= n) throw new CommError(`broadcast in group '${this.name}': root must be 0…${n - 1}, got ${root}`, 'broadcast', this.name);
    await this.drive(
      'broadcast',
      () => seg.native.broadcast(seg.h, io, buf, root),
      () => closedForm.broadcast(n, me, root, buf.length),
    );
  }

  async barrier(): Promise<void> {
    const { seg, io } = this;
    await this.drive(
      'barrier',
      () => seg.native.barrier(seg.h, io),
      () => ({ sent: 0, recv: 0 }),
    );
  }

  send(peer: number, data: Float32Array, tag = 0): Promise<void> {
    return this.mail.send(peer, data, tag);
  }

  recv(peer: number, tag = 0): Promise<Float32Array> {
    return this.mail.recv(peer, tag);
  }
}
