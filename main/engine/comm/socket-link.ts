/**
 * One stream-socket connection between two ranks (TCP with TCP_NODELAY, or a
 * Unix socket — same code), shared by every group the two ranks have in
 * common. Messages are length-framed:
 *   [u32 group index][u32 tag][u32 payload bytes][u32 0] payload
 * and queued per (group, tag) until someone takes them, so messages of one
 * group and tag between one pair arrive in order. A payload is copied once,
 * from the socket's chunks into its own ArrayBuffer (offset 0, so 4-byte
 * aligned; not zero-filled first), which becomes the Float32Array handed out. No frame ever exceeds 4 GiB − 1.
 */
import type net from 'node:net';
import { CommError } from './communicator';

const HEADER = 16;
export const COLLECTIVE_TAG = 0xffffffff;

export interface Message {
  data: Float32Array;
  /** performance.now() when its header arrived */
  t: number;
}

interface Waiter {
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Queue {
  msgs: Message[];
  waiters: Waiter[];
}

export class PeerLink {
  private readonly queues = new Map<string, Queue>();
  private failure: Error | null = null;
  private readonly head = Buffer.alloc(HEADER);
  private headFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private bodyKey = '';
  private bodyT = 0;
  /** payload bytes written to / read from this peer */
  bytesOut = 0;
  bytesIn = 0;

  constructor(
    /** the peer's global rank */
    readonly peer: number,
    private readonly sock: net.Socket,
  ) {
    if ('setNoDelay' in sock) sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData(d));
    // EPIPE / ECONNRESET: the peer closed its end (it exited, or left after a failure of its own)
    sock.on('error', (e: NodeJS.ErrnoException) =>
      this.fail(new CommError(e.code === 'EPIPE' || e.code === 'ECONNRESET' ? `connection to rank ${peer} closed by that rank (${e.message}): it exited or left after a failure of its own` : `connection to rank ${peer} failed: ${e.message}`)),
    );
    sock.on('close', () => this.fail(new CommError(`connection to rank ${peer} closed (that rank exited or closed its world)`)));
    sock.resume();
  }

  // ── receiving ─────────────────────────────────────────────────────────

  private onData(d: Buffer): void {
    let pos = 0;
    while (pos < d.length) {
      if (!this.body) {
        const take = Math.min(HEADER - this.headFill, d.length - pos);
        d.copy(this.head, this.headFill, pos, pos + take);
        pos += take;
        this.headFill += take;
        if (this.headFill === HEADER) this.startBody();
      } else {
        const take = Math.min(this.body.length - this.bodyFill, d.length - pos);
        this.body.set(d.subarray(pos, pos + take), this.bodyFill);
        pos += take;
        this.bodyFill += take;
        if (this.bodyFill === this.body.length) this.finishBody();
      }
    }
  }

  private startBody(): void {
    this.headFill = 0;
    this.bodyKey = `${this.head.readUInt32LE(0)}:${this.head.readUInt32LE(4)}`;
    this.bodyT = performance.now();
    this.body = Buffer.allocUnsafeSlow(this.head.readUInt32LE(8));
    this.bodyFill = 0;
    if (this.body.length === 0) this.finishBody();
  }

  private finishBody(): void {
    const body = this.body!;
    this.body = null;
    this.bytesIn += body.length;
    this.deliver(this.bodyKey, { data: new Float32Array(body.buffer, body.byteOffset, body.length >>> 2), t: this.bodyT });
  }

  private queue(key: string): Queue {
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = { msgs: [], waiters: [] }));
    return q;
  }

  private deliver(key: string, m: Message): void {
    const q = this.queue(key);
    const w = q.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(m);
    } else q.msgs.push(m);
  }

  /** The next message of (group, tag); rejects with onTimeout() after timeoutMs, or when the link fails. */
  take(group: number, tag: number, timeoutMs: number, onTimeout: () => Error): Promise<Message> {
    const q = this.queue(`${group}:${tag}`);
    const m = q.msgs.shift();
    if (m) return Promise.resolve(m);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          q.waiters.splice(q.waiters.indexOf(w), 1);
          reject(onTimeout());
        }, timeoutMs),
      };
      q.waiters.push(w);
    });
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const q of this.queues.values()) {
      for (const w of q.waiters) {
        clearTimeout(w.timer);
        w.reject(e);
      }
      q.waiters = [];
    }
  }

  // ── sending ───────────────────────────────────────────────────────────

  /** Resolves once the payload is handed to the kernel: only then may the caller reuse `data`. */
  write(group: number, tag: number, data: Float32Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (data.byteLength > 0xffffffff) return Promise.reject(new CommError(`message to rank ${this.peer} is ${data.byteLength} bytes, over the 4 GiB frame limit; split it`));
    const head = Buffer.allocUnsafe(HEADER);
    head.writeUInt32LE(group, 0);
    head.writeUInt32LE(tag >>> 0, 4);
    head.writeUInt32LE(data.byteLength, 8);
    head.writeUInt32LE(0, 12);
    this.bytesOut += data.byteLength;
    return new Promise((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(this.failure ?? new CommError(`send to rank ${this.peer}: ${err.message}`)) : resolve());
      if (data.byteLength === 0) {
        this.sock.write(head, done);
        return;
      }
      this.sock.cork();
      this.sock.write(head);
      this.sock.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength), done);
      this.sock.uncork();
    });
  }

  close(): void {
    this.fail(new CommError(`connection to rank ${this.peer} closed by this rank`));
    this.sock.destroy();
  }
}
