/**
 * Collectives over one group's shared-memory segment (layout and waiting:
 * shm-segment.ts; send/recv: shm-mailbox.ts). Made for 2–8 ranks on one host:
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
import { CommError, checkCounts, closedForm, evenCounts, offsets, outArray } from './communicator';
import type { CommOp, Communicator } from './communicator';
import type { Ledger } from './ledger';
import { ShmMailbox } from './shm-mailbox';
import type { ShmSegment } from './shm-segment';

const clamp = (x: number, hi: number) => Math.max(0, Math.min(hi, x));

export class ShmGroup implements Communicator {
  readonly rank: number;
  readonly size: number;
  private readonly slots: Float32Array[][];
  private readonly heads: Int32Array[][];
  /** floats per slot */
  private readonly W: number;
  private readonly mail: ShmMailbox;
  private gen = 0;
  private round = 0;
  private busy: CommOp | null = null;
  /** ms the current op waited for the last peer at its first sync */
  private firstWait = -1;

  constructor(
    readonly name: string,
    private readonly seg: ShmSegment,
    private readonly ledger: Ledger,
  ) {
    this.rank = seg.me;
    this.size = seg.n;
    this.W = seg.p.slotBytes / 4;
    const { layout } = seg;
    this.slots = Array.from({ length: seg.n }, (_, r) => [0, 1].map((p) => new Float32Array(seg.ab, layout.slot(r, p) + layout.slotHdrBytes, this.W)));
    this.heads = Array.from({ length: seg.n }, (_, r) => [0, 1].map((p) => new Int32Array(seg.ab, layout.slot(r, p), seg.n)));
    this.mail = new ShmMailbox(seg, ledger);
  }

  close(why: Error): void {
    this.mail.close(why);
  }

  // ── op bookkeeping and synchronisation ────────────────────────────────

  private begin(op: CommOp): number {
    if (this.busy) throw new CommError(`${op} in group '${this.name}' started while ${this.busy} is still running: await each collective before the next on the same group`, op, this.name);
    this.busy = op;
    this.firstWait = -1;
    return performance.now();
  }

  private end(op: CommOp, t0: number, bytes: { sent: number; recv: number }): void {
    this.busy = null;
    this.ledger.record(op, this.name, bytes.sent, bytes.recv, performance.now() - t0, Math.max(0, this.firstWait));
  }

  /** Post the next generation and wait for every peer: true when done without leaving the thread. */
  private syncNow(op: CommOp, t0: number): boolean {
    const g = (this.gen = (this.gen + 1) | 0);
    this.seg.arrive(g);
    const tw = performance.now();
    const done = this.seg.waitSync(g, op, t0);
    if (done && this.firstWait < 0) this.firstWait = performance.now() - tw;
    return done;
  }

  private async syncLater(op: CommOp, t0: number): Promise<void> {
    const tw = performance.now();
    await this.seg.waitAsync(this.gen, op, t0);
    if (this.firstWait < 0) this.firstWait = performance.now() - tw;
  }

  private run<T>(op: CommOp, body: (t0: number) => Promise<T>): Promise<T> {
    let t0: number;
    try {
      t0 = this.begin(op);
    } catch (e) {
      return Promise.reject(e);
    }
    return body(t0).catch((e: unknown) => {
      this.busy = null;
      throw e;
    });
  }

  private parity(): number {
    return this.round++ & 1;
  }

  // ── collectives ───────────────────────────────────────────────────────

  allReduce(buf: Float32Array): Promise<void> {
    return this.run('all_reduce', async (t0) => {
      const { size: n, rank: me } = this;
      const counts = evenCounts(buf.length, n);
      const offs = offsets(counts);
      const wc = Math.floor(this.W / n);
      const windows = Math.ceil(counts[0] / wc);
      for (let k = 0; k < windows; k++) {
        const p = this.parity();
        const at = (r: number) => offs[r] + k * wc;
        const len = (r: number) => clamp(counts[r] - k * wc, wc);
        const mine = this.slots[me][p];
        for (let r = 0; r < n; r++) if (r !== me && len(r) > 0) mine.set(buf.subarray(at(r), at(r) + len(r)), r * wc);
        if (k === 0) this.heads[me][p][0] = buf.length;
        if (!this.syncNow('all_reduce', t0)) await this.syncLater('all_reduce', t0);
        if (k === 0) this.checkSameLength('all_reduce', p, buf.length);
        const m = len(me);
        if (m > 0) {
          const own = buf.subarray(at(me), at(me) + m);
          const srcs = this.slots.map((s, r) => (r === me ? own : s[p].subarray(me * wc, me * wc + m)));
          this.seg.native.reduceInto(mine.subarray(me * wc, me * wc + m), srcs, own);
        }
        if (!this.syncNow('all_reduce', t0)) await this.syncLater('all_reduce', t0);
        for (let r = 0; r < n; r++) if (r !== me && len(r) > 0) buf.set(this.slots[r][p].subarray(r * wc, r * wc + len(r)), at(r));
      }
      this.end('all_reduce', t0, closedForm.allReduce(n, me, buf.length));
    });
  }

  reduceScatter(buf: Float32Array, counts?: number[], into?: Float32Array): Promise<Float32Array> {
    return this.run('reduce_scatter', async (t0) => {
      const { size: n, rank: me } = this;
      const c = counts ?? evenCounts(buf.length, n);
      checkCounts('reduce_scatter', this.name, c, n, buf.length);
      const offs = offsets(c);
      const out = outArray('reduce_scatter', this.name, c[me], into);
      const wc = Math.floor(this.W / n);
      const windows = Math.max(1, Math.ceil(Math.max(...c) / wc));
      for (let k = 0; k < windows; k++) {
        const p = this.parity();
        const at = (r: number) => offs[r] + k * wc;
        const len = (r: number) => clamp(c[r] - k * wc, wc);
        const mine = this.slots[me][p];
        for (let r = 0; r < n; r++) if (r !== me && len(r) > 0) mine.set(buf.subarray(at(r), at(r) + len(r)), r * wc);
        if (k === 0) this.heads[me][p][0] = buf.length;
        if (!this.syncNow('reduce_scatter', t0)) await this.syncLater('reduce_scatter', t0);
        if (k === 0) this.checkSameLength('reduce_scatter', p, buf.length);
        const m = len(me);
        if (m > 0) {
          const srcs = this.slots.map((s, r) => (r === me ? buf.subarray(at(me), at(me) + m) : s[p].subarray(me * wc, me * wc + m)));
          this.seg.native.reduceInto(out.subarray(k * wc, k * wc + m), srcs);
        }
      }
      this.end('reduce_scatter', t0, closedForm.reduceScatter(n, me, c));
      return out;
    });
  }

  allGather(chunk: Float32Array, counts?: number[], into?: Float32Array): Promise<Float32Array> {
    return this.run('all_gather', async (t0) => {
      const { size: n, rank: me, W } = this;
      if (counts) {
        checkCounts('all_gather', this.name, counts, n);
        if (counts[me] !== chunk.length) throw new CommError(`all_gather in group '${this.name}': rank ${me} holds ${chunk.length} floats but counts[${me}] = ${counts[me]}`, 'all_gather', this.name);
      }
      let c: number[] = [];
      let offs: number[] = [];
      let out: Float32Array = new Float32Array(0);
      for (let k = 0, windows = 1; k < windows; k++) {
        const p = this.parity();
        this.slots[me][p].set(chunk.subarray(Math.min(k * W, chunk.length), Math.min((k + 1) * W, chunk.length)));
        if (k === 0) this.heads[me][p][0] = chunk.length;
        if (!this.syncNow('all_gather', t0)) await this.syncLater('all_gather', t0);
        if (k === 0) {
          c = this.heads.map((h) => h[p][0]);
          if (counts && c.some((x, r) => x !== counts[r])) throw new CommError(`all_gather in group '${this.name}': ranks hold [${c.join(', ')}] floats but counts say [${counts.join(', ')}]`, 'all_gather', this.name);
          offs = offsets(c);
          out = outArray('all_gather', this.name, offs[n], into);
          out.set(chunk, offs[me]);
          windows = Math.max(1, Math.ceil(Math.max(...c) / W));
        }
        for (let r = 0; r < n; r++) {
          const len = clamp(c[r] - k * W, W);
          if (r !== me && len > 0) out.set(this.slots[r][p].subarray(0, len), offs[r] + k * W);
        }
      }
      this.end('all_gather', t0, closedForm.allGather(n, me, c));
      return out;
    });
  }

  allToAllV(send: Float32Array, sendCounts: number[], recvCounts: number[] | null, into?: Float32Array): Promise<Float32Array> {
    return this.run('all_to_all', async (t0) => {
      const { size: n, rank: me, W } = this;
      checkCounts('all_to_all', this.name, sendCounts, n, send.length);
      if (recvCounts) checkCounts('all_to_all', this.name, recvCounts, n);
      // My stream: my pieces for the others, in rank order (my own piece skipped).
      const so = offsets(sendCounts);
      const streamLen = send.length - sendCounts[me];
      const fromStream = (a: number, b: number) => [
        [a, Math.min(b, so[me])],
        [Math.max(a, so[me]) + sendCounts[me], b + sendCounts[me]],
      ];
      let sc: number[][] = [];
      let recv: number[] = [];
      let out: Float32Array = new Float32Array(0);
      let outOffs: number[] = [];
      for (let k = 0, windows = 1; k < windows; k++) {
        const p = this.parity();
        const mine = this.slots[me][p];
        const [w0, w1] = [Math.min(k * W, streamLen), Math.min((k + 1) * W, streamLen)];
        for (const [a, b] of fromStream(w0, w1)) if (b > a) mine.set(send.subarray(a, b), (a < so[me] ? a : a - sendCounts[me]) - w0);
        if (k === 0) this.heads[me][p].set(sendCounts);
        if (!this.syncNow('all_to_all', t0)) await this.syncLater('all_to_all', t0);
        if (k === 0) {
          sc = this.heads.map((h, r) => Array.from(h[p]).map((x, q) => (q === r ? 0 : x)));
          recv = this.heads.map((h) => h[p][me]);
          if (recvCounts && recv.some((x, r) => x !== recvCounts[r])) throw new CommError(`all_to_all in group '${this.name}': peers send [${recv.join(', ')}] floats but recvCounts say [${recvCounts.join(', ')}]`, 'all_to_all', this.name);
          outOffs = offsets(recv);
          out = outArray('all_to_all', this.name, outOffs[n], into);
          out.set(send.subarray(so[me], so[me + 1]), outOffs[me]);
          windows = Math.max(1, Math.ceil(Math.max(...sc.map((s) => s.reduce((x, y) => x + y, 0))) / W));
        }
        for (let r = 0; r < n; r++) {
          if (r === me) continue;
          const ro = offsets(sc[r]);
          const a = Math.max(ro[me], k * W);
          const b = Math.min(ro[me + 1], (k + 1) * W);
          if (b > a) out.set(this.slots[r][p].subarray(a - k * W, b - k * W), outOffs[r] + (a - ro[me]));
        }
      }
      this.end('all_to_all', t0, closedForm.allToAllV(me, sendCounts, recv));
      return out;
    });
  }

  broadcast(buf: Float32Array, root: number): Promise<void> {
    return this.run('broadcast', async (t0) => {
      const { size: n, rank: me, W } = this;
      if (!Number.isInteger(root) || root < 0 || root >= n) throw new CommError(`broadcast in group '${this.name}': root must be 0…${n - 1}, got ${root}`, 'broadcast', this.name);
      const windows = Math.max(1, Math.ceil(buf.length / W));
      for (let k = 0; k < windows; k++) {
        const p = this.parity();
        const [a, b] = [k * W, Math.min((k + 1) * W, buf.length)];
        if (me === root) this.slots[me][p].set(buf.subarray(a, b));
        if (k === 0) this.heads[me][p][0] = buf.length;
        if (!this.syncNow('broadcast', t0)) await this.syncLater('broadcast', t0);
        if (k === 0) this.checkSameLength('broadcast', p, buf.length);
        if (me !== root) buf.set(this.slots[root][p].subarray(0, b - a), a);
      }
      this.end('broadcast', t0, closedForm.broadcast(n, me, root, buf.length));
    });
  }

  barrier(): Promise<void> {
    return this.run('barrier', async (t0) => {
      if (!this.syncNow('barrier', t0)) await this.syncLater('barrier', t0);
      this.end('barrier', t0, { sent: 0, recv: 0 });
    });
  }

  send(peer: number, data: Float32Array, tag = 0): Promise<void> {
    return this.mail.send(peer, data, tag);
  }

  recv(peer: number, tag = 0): Promise<Float32Array> {
    return this.mail.recv(peer, tag);
  }

  /** Every rank must pass buffers of one length (else the windows, hence the generations, would drift apart). */
  private checkSameLength(op: CommOp, p: number, len: number): void {
    const lens = this.heads.map((h) => h[p][0]);
    if (lens.some((l) => l !== len)) {
      this.seg.markClosed(true);
      throw new CommError(`${op} in group '${this.name}': ranks passed buffers of [${lens.join(', ')}] floats; every rank must pass the same length`, op, this.name);
    }
  }
}
