/**
 * The control plane's byte carrier for a rank that is not a child process
 * (`lab worker --join HOST:PORT`, a rank on another machine): the same
 * HostMsg / RankMsg unions as the IPC channel, length-framed
 * [u32 bytes][v8.serialize(msg)] over TCP, so typed arrays travel as-is.
 */
import net from 'node:net';
import v8 from 'node:v8';
import { EventEmitter } from 'node:events';

/** Frame and parse v8-serialized messages on a socket. */
export class FramedSocket extends EventEmitter {
  private buf: Buffer = Buffer.alloc(0);

  constructor(readonly sock: net.Socket) {
    super();
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      while (this.buf.length >= 4) {
        const n = this.buf.readUInt32LE(0);
        if (this.buf.length < 4 + n) break;
        const msg = v8.deserialize(this.buf.subarray(4, 4 + n));
        this.buf = this.buf.subarray(4 + n);
        this.emit('message', msg);
      }
    });
    sock.on('close', () => this.emit('close'));
    sock.on('error', (e) => this.emit('error', e));
  }

  send(msg: unknown, cb?: (err: Error | null) => void): void {
    const body = v8.serialize(msg);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(body.length, 0);
    this.sock.write(head);
    this.sock.write(body, (err) => cb?.(err ?? null));
  }
}

export function parseHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`expected HOST:PORT (e.g. 192.168.1.10:7070; port 0 picks a free one), got '${s}'`);
  return { host: s.slice(0, i), port };
}
