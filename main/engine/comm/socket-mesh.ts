/**
 * A socket rank's connections: one PeerLink to every rank it shares a group
 * with. The rank listens first (TCP port 0 on listenHost, or r<rank>.sock in
 * the world's folder) and accepts from the start, then registers at the
 * rendezvous (rendezvous.ts), then dials every lower-numbered peer; higher
 * peers dial it. Each connection opens with an 8-byte hello: the dialler's
 * rank and a magic word.
 */
import net from 'node:net';
import path from 'node:path';
import { CommError } from './communicator';
import { connectTo, register } from './rendezvous';
import { PeerLink } from './socket-link';

const HELLO = 0x504c4831;

export interface MeshOptions {
  id: string;
  rank: number;
  peers: number[];
  timeoutMs: number;
  rendezvous: string;
  listenHost: string;
  /** Unix sockets: the world's folder; null for TCP */
  dir: string | null;
}

export async function connectMesh(o: MeshOptions): Promise<Map<number, PeerLink>> {
  const links = new Map<number, PeerLink>();
  const acceptor = await Acceptor.listen(o, links);
  try {
    const endpoints = await register(o.rendezvous, { id: o.id, rank: o.rank, endpoint: acceptor.endpoint }, o.peers, o.timeoutMs);
    const lower = o.peers.filter((p) => p < o.rank);
    await Promise.all(lower.map(async (p) => links.set(p, new PeerLink(p, await dial(endpoints[p]!, o.rank)))));
    await acceptor.all(o.peers.filter((p) => p > o.rank), o.timeoutMs);
    return links;
  } catch (e) {
    for (const l of links.values()) l.close();
    throw e;
  } finally {
    acceptor.close();
  }
}

/** Our listening socket: accepts and identifies peers from the moment it listens. */
class Acceptor {
  private waiting: (() => void) | null = null;

  private constructor(
    private readonly server: net.Server,
    readonly endpoint: string,
    private readonly links: Map<number, PeerLink>,
  ) {
    server.on('connection', (sock) => this.hello(sock));
  }

  static listen(o: MeshOptions, links: Map<number, PeerLink>): Promise<Acceptor> {
    const server = net.createServer();
    return new Promise((resolve, reject) => {
      server.once('error', (e) => reject(new CommError(`rank ${o.rank} could not listen for its peers: ${e.message}`, 'join')));
      const file = o.dir && path.join(o.dir, `r${o.rank}.sock`);
      const ready = () => resolve(new Acceptor(server, file ?? `${o.listenHost}:${(server.address() as net.AddressInfo).port}`, links));
      if (file) server.listen(file, ready);
      else server.listen(0, o.listenHost, ready);
    });
  }

  private hello(sock: net.Socket): void {
    sock.once('readable', () => {
      const b = sock.read(8) as Buffer | null;
      if (!b) return void this.hello(sock);
      if (b.readUInt32LE(4) !== HELLO) return void sock.destroy();
      this.links.set(b.readUInt32LE(0), new PeerLink(b.readUInt32LE(0), sock));
      this.waiting?.();
    });
  }

  /** Resolves once every rank in `higher` has connected to us. */
  all(higher: number[], timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const missing = () => higher.filter((p) => !this.links.has(p));
      const timer = setTimeout(() => reject(new CommError(`rank(s) ${missing().join(', ')} did not connect within ${Math.round(timeoutMs / 1000)} s`, 'join')), timeoutMs);
      this.waiting = () => {
        if (missing().length > 0) return;
        clearTimeout(timer);
        this.waiting = null;
        resolve();
      };
      this.waiting();
    });
  }

  close(): void {
    this.server.close();
  }
}

function dial(endpoint: string, rank: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = connectTo(endpoint);
    sock.once('error', (e) => reject(new CommError(`rank ${rank} could not connect to a peer at ${endpoint}: ${e.message}`, 'join')));
    sock.once('connect', () => {
      const hello = Buffer.alloc(8);
      hello.writeUInt32LE(rank, 0);
      hello.writeUInt32LE(HELLO, 4);
      sock.write(hello);
      resolve(sock);
    });
  });
}
