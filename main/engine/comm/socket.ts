/**
 * Collectives over stream sockets (TCP, or Unix sockets on one host; links:
 * socket-link.ts): what reaches another machine, and the fallback where the
 * shared-memory addon is not built. Built from point-to-point messages in the
 * direct pattern, every rank talking to every peer at once — 2 message steps
 * for an all-reduce instead of a ring's 2(n−1), for the same bytes per rank
 * (for the 2–8 ranks a lab runs, latency is what a ring would cost):
 *   allReduce     reduce-scatter (piece p → rank p, summed there in rank order)
 *                 + all-gather of the sums: sent = recv = (L − c_me) + (n−1)·c_me
 *                 [= 2(n−1)/n·L, a ring's volume]; bit-identical on every rank
 *   reduceScatter sent = L − c_me, recv = (n−1)·c_me
 *   allGather     each chunk to every peer: sent = (n−1)·c_me, recv = Σc − c_me
 *   allToAllV     pairwise: piece p → rank p; counts travel in the frames
 *   broadcast     root → each peer: (n−1)·L from the root
 *   barrier       an empty message to and from every peer
 * These are the payload bytes written to / read from the sockets (frame
 * headers not counted) and what the ledger records.
 * waitMs: until the header of the slowest peer's first message arrived.
 */
import { CommError, checkCounts, checkPeerTag, closedForm, evenCounts, offsets, outArray, timeoutError } from './communicator';
import type { CommOp, Communicator } from './communicator';
import type { Ledger } from './ledger';
import { reduceInto } from './reduce';
import { COLLECTIVE_TAG } from './socket-link';
import type { Message, PeerLink } from './socket-link';

export class SocketGroup implements Communicator {
  readonly rank: number;
  readonly size: number;
  private busy: CommOp | null = null;

  /** links: global rank → link; members: the group's global ranks, in group-rank order */
  constructor(
    readonly name: string,
    private readonly id: number,
    me: number,
    private readonly members: number[],
    private readonly links: Map<number, PeerLink>,
    private readonly ledger: Ledger,
    private readonly timeoutMs: number,
  ) {
    this.rank = members.indexOf(me);
    this.size = members.length;
  }

  // ── plumbing ──────────────────────────────────────────────────────────

  private put(r: number, data: Float32Array, tag = COLLECTIVE_TAG): Promise<void> {
    return this.links.get(this.members[r])!.write(this.id, tag, data);
  }

  private take(r: number, op: CommOp, tag = COLLECTIVE_TAG): Promise<Message> {
    return this.links.get(this.members[r])!.take(this.id, tag, this.timeoutMs, () => timeoutError(op, this.name, [r], this.timeoutMs));
  }

  private get others(): number[] {
    return Array.from({ length: this.size }, (_, r) => r).filter((r) => r !== this.rank);
  }

  /** One message from every peer, in rank order (this rank's slot: null), and the wait for the slowest. */
  private async takeAll(op: CommOp, t0: number): Promise<{ msgs: (Float32Array | null)[]; wait: number }> {
    const got = await Promise.all(Array.from({ length: this.size }, (_, r) => (r === this.rank ? null : this.take(r, op))));
    const wait = Math.max(0, ...got.map((m) => (m ? m.t - t0 : 0)));
    return { msgs: got.map((m) => (m ? m.data : null)), wait };
  }

  private async run<T>(op: CommOp, body: (t0: number) => Promise<{ result: T; wait: number; bytes: { sent: number; recv: number } }>): Promise<T> {
    if (this.busy) throw new CommError(`${op} in group '${this.name}' started while ${this.busy} is still running: await each collective before the next on the same group`, op, this.name);
    this.busy = op;
    const t0 = performance.now();
    try {
      const { result, wait, bytes } = await body(t0);
      this.ledger.record(op, this.name, bytes.sent, bytes.recv, performance.now() - t0, wait);
      return result;
    } finally {
      this.busy = null;
    }
  }

  private lengthError(op: CommOp, r: number, got: number, want: number): CommError {
    return new CommError(`${op} in group '${this.name}': rank ${r} sent ${got} floats where ${want} were expected; every rank must pass the same length / counts`, op, this.name, [r]);
  }

  // ── the two halves of an all-reduce ───────────────────────────────────

  private async scatterSum(buf: Float32Array, counts: number[], op: CommOp, t0: number, into?: Float32Array): Promise<{ mine: Float32Array; wait: number }> {
    const offs = offsets(counts);
    const piece = (r: number) => buf.subarray(offs[r], offs[r + 1]);
    const sends = this.others.map((r) => this.put(r, piece(r)));
    const { msgs, wait } = await this.takeAll(op, t0);
    msgs.forEach((m, r) => {
      if (m && m.length !== counts[this.rank]) throw this.lengthError(op, r, m.length, counts[this.rank]);
    });
    await Promise.all(sends);
    const mine = outArray(op, this.name, counts[this.rank], into);
    reduceInto(mine, msgs.map((m, r) => m ?? piece(r)));
    return { mine, wait };
  }

  private async gather(chunk: Float32Array, counts: number[] | null, op: CommOp, t0: number, into?: Float32Array): Promise<{ out: Float32Array; counts: number[]; wait: number }> {
    const sends = this.others.map((r) => this.put(r, chunk));
    const { msgs, wait } = await this.takeAll(op, t0);
    const got = msgs.map((m) => (m ? m.length : chunk.length));
    got.forEach((c, r) => {
      if (counts && c !== counts[r]) throw this.lengthError(op, r, c, counts[r]);
    });
    const offs = offsets(got);
    const out = outArray(op, this.name, offs[this.size], into);
    msgs.forEach((m, r) => out.set(m ?? chunk, offs[r]));
    await Promise.all(sends);
    return { out, counts: got, wait };
  }

  // ── collectives ───────────────────────────────────────────────────────

  allReduce(buf: Float32Array): Promise<void> {
    return this.run('all_reduce', async (t0) => {
      const counts = evenCounts(buf.length, this.size);
      const { mine, wait } = await this.scatterSum(buf, counts, 'all_reduce', t0);
      await this.gather(mine, counts, 'all_reduce', t0, buf);
      return { result: undefined, wait, bytes: closedForm.allReduce(this.size, this.rank, buf.length) };
    });
  }

  reduceScatter(buf: Float32Array, counts?: number[], into?: Float32Array): Promise<Float32Array> {
    return this.run('reduce_scatter', async (t0) => {
      const c = counts ?? evenCounts(buf.length, this.size);
      checkCounts('reduce_scatter', this.name, c, this.size, buf.length);
      const { mine, wait } = await this.scatterSum(buf, c, 'reduce_scatter', t0, into);
      return { result: mine, wait, bytes: closedForm.reduceScatter(this.size, this.rank, c) };
    });
  }

  allGather(chunk: Float32Array, counts?: number[], into?: Float32Array): Promise<Float32Array> {
    return this.run('all_gather', async (t0) => {
      if (counts) {
        checkCounts('all_gather', this.name, counts, this.size);
        if (counts[this.rank] !== chunk.length) throw new CommError(`all_gather in group '${this.name}': rank ${this.rank} holds ${chunk.length} floats but counts[${this.rank}] = ${counts[this.rank]}`, 'all_gather', this.name);
      }
      const { out, counts: got, wait } = await this.gather(chunk, counts ?? null, 'all_gather', t0, into);
      return { result: out, wait, bytes: closedForm.allGather(this.size, this.rank, got) };
    });
  }

  allToAllV(send: Float32Array, sendCounts: number[], recvCounts: number[] | null, into?: Float32Array): Promise<Float32Array> {
    return this.run('all_to_all', async (t0) => {
      checkCounts('all_to_all', this.name, sendCounts, this.size, send.length);
      if (recvCounts) checkCounts('all_to_all', this.name, recvCounts, this.size);
      const so = offsets(sendCounts);
      const piece = (r: number) => send.subarray(so[r], so[r + 1]);
      const sends = this.others.map((r) => this.put(r, piece(r)));
      const { msgs, wait } = await this.takeAll('all_to_all', t0);
      const parts = msgs.map((m, r) => m ?? piece(r));
      parts.forEach((p, r) => {
        if (recvCounts && p.length !== recvCounts[r]) throw this.lengthError('all_to_all', r, p.length, recvCounts[r]);
      });
      const oo = offsets(parts.map((p) => p.length));
      const out = outArray('all_to_all', this.name, oo[this.size], into);
      parts.forEach((p, r) => out.set(p, oo[r]));
      await Promise.all(sends);
      return { result: out, wait, bytes: closedForm.allToAllV(this.rank, sendCounts, parts.map((p) => p.length)) };
    });
  }

  broadcast(buf: Float32Array, root: number): Promise<void> {
    return this.run('broadcast', async (t0) => {
      if (!Number.isInteger(root) || root < 0 || root >= this.size) throw new CommError(`broadcast in group '${this.name}': root must be 0…${this.size - 1}, got ${root}`, 'broadcast', this.name);
      let wait = 0;
      if (this.rank === root) await Promise.all(this.others.map((r) => this.put(r, buf)));
      else {
        const m = await this.take(root, 'broadcast');
        if (m.data.length !== buf.length) throw this.lengthError('broadcast', root, m.data.length, buf.length);
        buf.set(m.data);
        wait = Math.max(0, m.t - t0);
      }
      return { result: undefined, wait, bytes: closedForm.broadcast(this.size, this.rank, root, buf.length) };
    });
  }

  barrier(): Promise<void> {
    return this.run('barrier', async (t0) => {
      const sends = this.others.map((r) => this.put(r, new Float32Array(0)));
      const { wait } = await this.takeAll('barrier', t0);
      await Promise.all(sends);
      return { result: undefined, wait, bytes: { sent: 0, recv: 0 } };
    });
  }

  async send(peer: number, data: Float32Array, tag = 0): Promise<void> {
    const bad = checkPeerTag('send', this.name, this.size, this.rank, peer, tag);
    if (bad) throw bad;
    const t0 = performance.now();
    await this.put(peer, data, tag);
    this.ledger.record('send', this.name, data.byteLength, 0, performance.now() - t0, 0);
  }

  async recv(peer: number, tag = 0): Promise<Float32Array> {
    const bad = checkPeerTag('recv', this.name, this.size, this.rank, peer, tag);
    if (bad) throw bad;
    const t0 = performance.now();
    const m = await this.take(peer, 'recv', tag);
    this.ledger.record('recv', this.name, 0, m.data.byteLength, performance.now() - t0, Math.max(0, m.t - t0));
    return m.data;
  }
}
