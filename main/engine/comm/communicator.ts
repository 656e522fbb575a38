/**
 * The one interface every strategy talks through: collectives over a group of
 * ranks, whatever carries the bytes (shared memory, Unix socket, TCP).
 *
 * Bytes each call moves per rank (n = group size, c = counts in floats, the
 * default counts being evenCounts(L, n); multiply by 4 for bytes). Every
 * transport implements the same "direct" pattern, so these closed forms are
 * what the comm ledger records on shm, tcp and unix alike (see ledger.ts):
 *   allReduce(L)       sent = recv = (L − c_me) + (n−1)·c_me       [= 2(n−1)/n·L when n | L]
 *                      (reduce-scatter: piece p goes to rank p; all-gather of the sums)
 *   reduceScatter(L,c) sent = L − c_me,       recv = (n−1)·c_me
 *   allGather(c)       sent = (n−1)·c_me,     recv = Σc − c_me
 *   allToAllV(s, r)    sent = Σ_{p≠me} s[p],  recv = Σ_{p≠me} r[p]
 *   broadcast(L)       root sent = (n−1)·L,   others recv = L
 *   send / recv        the message;           barrier: 0
 *
 * Rules: every rank of the group makes the same collective calls in the same
 * order, and awaits each before starting the next on that group (a second
 * overlapping collective throws). send/recv may overlap freely, in both
 * directions; messages between one pair with one tag arrive in order.
 *
 * Payloads are float32. Collectives that only move data (allGather,
 * allToAllV, broadcast, send/recv) copy bytes verbatim, so int32 data (token
 * ids, counts) rides as a Float32Array view of the same bytes: asF32 / asI32.
 * Only allReduce and reduceScatter do arithmetic.
 */

export interface Communicator {
  /** this rank's index in the group (0 … size−1) */
  readonly rank: number;
  readonly size: number;
  readonly name: string;
  /** Sum over the group, in place. Bit-identical on every rank. */
  allReduce(buf: Float32Array): Promise<void>;
  /**
   * Sum over the group; returns this rank's chunk. counts: floats per rank,
   * default evenCounts(buf.length, size). out: where to put the chunk (else a new array).
   */
  reduceScatter(buf: Float32Array, counts?: number[], out?: Float32Array): Promise<Float32Array>;
  /** Every rank's chunk, concatenated in rank order. counts (floats per rank) are checked when given, learned when not. */
  allGather(chunk: Float32Array, counts?: number[], out?: Float32Array): Promise<Float32Array>;
  /**
   * send holds one piece per peer, in rank order (sendCounts[p] floats for p);
   * returns the pieces received, in rank order. recvCounts null: learned from the peers.
   */
  allToAllV(send: Float32Array, sendCounts: number[], recvCounts: number[] | null, out?: Float32Array): Promise<Float32Array>;
  /** Point to point; the receiver need not know the size. tag: 0 … 2^31−1, default 0. */
  send(peer: number, data: Float32Array, tag?: number): Promise<void>;
  recv(peer: number, tag?: number): Promise<Float32Array>;
  /** Root's buf, copied into everyone's buf (same length on every rank). */
  broadcast(buf: Float32Array, root: number): Promise<void>;
  barrier(): Promise<void>;
}

export type CommOp = 'all_reduce' | 'reduce_scatter' | 'all_gather' | 'all_to_all' | 'send' | 'recv' | 'broadcast' | 'barrier';

/** A data-plane failure: which op, which group, which peers (group ranks) it was waiting for. */
export class CommError extends Error {
  constructor(
    message: string,
    readonly op: CommOp | 'join' | null = null,
    readonly group: string | null = null,
    readonly peers: number[] = [],
  ) {
    super(message);
    this.name = 'CommError';
  }
}

/** Waiting for `peers` of `group` in `op` failed: the one message shape every transport uses. */
export function peerError(op: CommOp, group: string, peers: number[], why: string): CommError {
  const who = peers.length === 1 ? `rank ${peers[0]}` : `ranks ${peers.join(', ')}`;
  return new CommError(`${op} in group '${group}': ${who} ${why}`, op, group, peers);
}

export function timeoutError(op: CommOp, group: string, peers: number[], timeoutMs: number): CommError {
  return peerError(op, group, peers, `did not arrive within ${fmtSeconds(timeoutMs)} (a peer died or is stuck; if this wait is expected, raise --timeout)`);
}

function fmtSeconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms)} ms`;
}

/** Default counts: n near-equal parts of `total`, the first `total mod n` one larger. */
export function evenCounts(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  const extra = total % n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}

/** Prefix sums: offsets(c)[i] is where part i starts, offsets(c)[n] the total. */
export function offsets(counts: number[]): number[] {
  const out = [0];
  for (const c of counts) out.push(out[out.length - 1] + c);
  return out;
}

export function sumExcept(counts: number[], me: number): number {
  let s = 0;
  for (let p = 0; p < counts.length; p++) if (p !== me) s += counts[p];
  return s;
}

/** Check caller-supplied counts once, with a message that says what to change. */
export function checkCounts(op: CommOp, group: string, counts: number[], n: number, total?: number): void {
  if (counts.length !== n || counts.some((c) => !Number.isInteger(c) || c < 0)) {
    throw new CommError(`${op} in group '${group}': counts must be ${n} non-negative integers (one per rank), got [${counts.join(', ')}]`, op, group);
  }
  if (total !== undefined && counts.reduce((a, b) => a + b, 0) !== total) {
    throw new CommError(`${op} in group '${group}': counts [${counts.join(', ')}] sum to ${counts.reduce((a, b) => a + b, 0)} but the buffer holds ${total} floats`, op, group);
  }
}

/**
 * The result array of a collective: the caller's `out` (checked for length)
 * or a new one. Passing `out` saves an allocation per call, which costs more
 * than the copy itself above ~64 KiB (fresh pages fault in).
 */
export function outArray(op: CommOp, group: string, floats: number, out?: Float32Array): Float32Array {
  if (!out) return uninitF32(floats);
  if (out.length !== floats) throw new CommError(`${op} in group '${group}': out holds ${out.length} floats, the result has ${floats}`, op, group);
  return out;
}

/** A Float32Array the caller will overwrite entirely: not zero-filled, in its own ArrayBuffer. */
export function uninitF32(floats: number): Float32Array {
  return new Float32Array(Buffer.allocUnsafeSlow(4 * floats).buffer, 0, floats);
}

/** A bad peer or tag for send / recv, as an error to reject with (null: fine). */
export function checkPeerTag(op: 'send' | 'recv', group: string, n: number, me: number, peer: number, tag: number): CommError | null {
  if (!Number.isInteger(peer) || peer < 0 || peer >= n || peer === me) {
    return new CommError(`${op} in group '${group}': peer must be another rank of the group (0…${n - 1}, not ${me}), got ${peer}`, op, group);
  }
  if (!Number.isInteger(tag) || tag < 0 || tag > 0x7fffffff) return new CommError(`${op} in group '${group}': tag must be an integer 0…2^31−1, got ${tag}`, op, group);
  return null;
}

/** The same bytes seen as float32 (to ride a collective) … */
export function asF32(a: Int32Array | Uint32Array): Float32Array {
  return new Float32Array(a.buffer, a.byteOffset, a.length);
}

/** … and back. */
export function asI32(a: Float32Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

/**
 * Bytes a call moves for this rank, per the closed forms above. The ledger
 * records exactly these on every transport.
 */
export const closedForm = {
  allReduce(n: number, me: number, floats: number): { sent: number; recv: number } {
    const c = evenCounts(floats, n)[me];
    const b = 4 * (floats - c + (n - 1) * c);
    return { sent: b, recv: b };
  },
  reduceScatter(n: number, me: number, counts: number[]): { sent: number; recv: number } {
    return { sent: 4 * sumExcept(counts, me), recv: 4 * (n - 1) * counts[me] };
  },
  allGather(n: number, me: number, counts: number[]): { sent: number; recv: number } {
    return { sent: 4 * (n - 1) * counts[me], recv: 4 * sumExcept(counts, me) };
  },
  allToAllV(me: number, sendCounts: number[], recvCounts: number[]): { sent: number; recv: number } {
    return { sent: 4 * sumExcept(sendCounts, me), recv: 4 * sumExcept(recvCounts, me) };
  },
  broadcast(n: number, me: number, root: number, floats: number): { sent: number; recv: number } {
    return me === root ? { sent: 4 * (n - 1) * floats, recv: 0 } : { sent: 0, recv: 4 * floats };
  },
};
