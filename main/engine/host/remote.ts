/**
 * Ranks on other machines: `lab worker --join HOST:PORT` connects to the
 * host's listening socket, says hello, and from then on is a rank like a
 * forked child — the same HostMsg / RankMsg unions, framed over TCP
 * (rank/channel.ts). RemoteRank gives the cluster the ChildProcess surface
 * it uses, so supervision is identical.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { FramedSocket, parseHostPort } from '../rank/channel';
import { ClusterError } from './errors';

/** What the cluster needs of a rank process: a forked child, or a worker joined over TCP. */
export type RankLink = Pick<ChildProcess, 'pid' | 'connected' | 'send' | 'on' | 'once' | 'kill'>;

/** A rank on another process tree or machine, behind a framed TCP socket, shaped like a ChildProcess. */
class RemoteRank extends EventEmitter {
  connected = true;
  constructor(
    private readonly ch: FramedSocket,
    readonly pid: number,
  ) {
    super();
    ch.on('message', (m) => this.emit('message', m));
    ch.on('close', () => {
      this.connected = false;
      this.emit('exit', null, null);
    });
    ch.on('error', () => undefined);
  }
  send(msg: unknown, cb?: (err: Error | null) => void): boolean {
    this.ch.send(msg, cb);
    return true;
  }
  kill(): boolean {
    this.ch.sock.destroy();
    return true;
  }
}

/** Listen for `lab worker --join` connections until `count` workers have said hello. */
export function acceptWorkers(o: { listen: string; count: number; onListening?: (address: string) => void }, timeoutMs: number): Promise<RankLink[]> {
  const { host, port } = parseHostPort(o.listen);
  return new Promise((resolve, reject) => {
    const joined: RankLink[] = [];
    const server = net.createServer((sock) => {
      const ch = new FramedSocket(sock);
      ch.once('message', (hello: { type?: string; pid?: number }) => {
        if (hello?.type !== 'hello') return sock.destroy();
        joined.push(new RemoteRank(ch, hello.pid ?? -1) as unknown as RankLink);
        if (joined.length === o.count) {
          clearTimeout(timer);
          server.close();
          resolve(joined);
        }
      });
    });
    const timer = setTimeout(() => {
      server.close();
      for (const j of joined) j.kill();
      reject(new ClusterError(`only ${joined.length} of ${o.count} workers joined at ${o.listen} within ${Math.round(timeoutMs / 1000)} s; start them with \`npm run lab -- worker --join ${o.listen}\``, null));
    }, timeoutMs);
    server.on('error', (e) => reject(new ClusterError(`cannot listen for workers at ${o.listen}: ${e.message}`, null)));
    server.listen(port, host, () => {
      const a = server.address() as net.AddressInfo;
      o.onListening?.(`${host}:${a.port}`);
    });
  });
}
