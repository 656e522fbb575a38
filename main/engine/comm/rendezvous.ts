/**
 * How socket ranks find each other, in any start order and across hosts.
 *
 * The host runs a tiny rendezvous server (TCP on host:0, or a Unix socket in
 * the world's folder). Each rank first listens on its own endpoint (port 0 /
 * its socket path), then registers: one JSON line {id, rank, endpoint}. For
 * TCP the server records the address it saw the rank connect from, so a rank
 * on another machine needs to know nothing but the rendezvous address. The
 * server answers each rank with a JSON line {endpoints} as soon as every rank
 * it shares a group with has registered, and tells the waiting ranks who is
 * registered so far ({registered}) so a timeout can name the missing ones.
 * The server lives until destroyWorld.
 */
import net from 'node:net';
import { CommError } from './communicator';

interface Registration {
  id: string;
  rank: number;
  endpoint: string;
}

export interface RendezvousServer {
  address: string;
  close(): void;
}

export function parseEndpoint(endpoint: string): { path: string } | { host: string; port: number } {
  if (endpoint.startsWith('/')) return { path: endpoint };
  const i = endpoint.lastIndexOf(':');
  return { host: endpoint.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(endpoint.slice(i + 1)) };
}

export function connectTo(endpoint: string): net.Socket {
  const e = parseEndpoint(endpoint);
  return 'path' in e ? net.connect(e.path) : net.connect(e.port, e.host);
}

/** Host side. peers[r]: the ranks r must reach (those it shares a group with); advertise: the host name ranks dial. */
export function startRendezvous(id: string, peers: number[][], listen: { path: string } | { host: string; advertise: string }): Promise<RendezvousServer> {
  const endpoints: (string | null)[] = peers.map(() => null);
  const waiting = new Map<number, net.Socket>();
  const registered = () => endpoints.flatMap((e, r) => (e ? [r] : []));
  const answer = () => {
    for (const [r, sock] of waiting) {
      if (peers[r].every((p) => endpoints[p])) {
        sock.end(JSON.stringify({ endpoints }) + '\n');
        waiting.delete(r);
      } else sock.write(JSON.stringify({ registered: registered() }) + '\n');
    }
  };
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    readLine(sock, (line) => {
      const reg = JSON.parse(line) as Registration;
      if (reg.id !== id || !(reg.rank >= 0 && reg.rank < peers.length)) return void sock.end(JSON.stringify({ error: `not a rank of world ${id}` }) + '\n');
      const seen = parseEndpoint(reg.endpoint);
      endpoints[reg.rank] = 'path' in seen ? reg.endpoint : `${normalise(sock.remoteAddress ?? seen.host)}:${seen.port}`;
      waiting.set(reg.rank, sock);
      answer();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new CommError(`could not start the rendezvous server: ${e.message}`)));
    const onListening = () => {
      const a = server.address();
      const address = typeof a === 'string' ? a : `${'advertise' in listen ? listen.advertise : '127.0.0.1'}:${(a as net.AddressInfo).port}`;
      resolve({ address, close: () => server.close() });
    };
    if ('path' in listen) server.listen(listen.path, onListening);
    else server.listen(0, listen.host, onListening);
    server.unref();
  });
}

function normalise(addr: string): string {
  const v4 = addr.replace(/^::ffff:/, '');
  return v4.includes(':') ? `[${v4}]` : v4;
}

function readLine(sock: net.Socket, onLine: (line: string) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line) onLine(line);
    }
  });
}

/** Rank side: register our endpoint; resolves with every rank's endpoint (null for ranks we never talk to). */
export function register(address: string, reg: Registration, peers: number[], timeoutMs: number): Promise<(string | null)[]> {
  return new Promise((resolve, reject) => {
    let seen: number[] = [];
    let done = false;
    const sock = connectTo(address);
    const finish = (e: Error | null, endpoints?: (string | null)[]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e);
      else resolve(endpoints!);
    };
    const timer = setTimeout(() => {
      const missing = peers.filter((p) => !seen.includes(p));
      finish(new CommError(`rank ${reg.rank} joining the world: rank(s) ${missing.join(', ')} did not register at ${address} within ${Math.round(timeoutMs / 1000)} s (did they start? raise timeoutMs if they load slowly)`, 'join'));
    }, timeoutMs);
    sock.on('error', (e) => finish(new CommError(`rank ${reg.rank} could not reach the rendezvous at ${address}: ${e.message} (the host exited, or this rank cannot reach it)`, 'join')));
    sock.on('close', () => finish(new CommError(`rank ${reg.rank}: the rendezvous at ${address} closed before all peers registered (the host destroyed the world)`, 'join')));
    sock.on('connect', () => sock.write(JSON.stringify(reg) + '\n'));
    readLine(sock, (line) => {
      const m = JSON.parse(line) as { endpoints?: (string | null)[]; registered?: number[]; error?: string };
      if (m.error) finish(new CommError(`rendezvous at ${address}: ${m.error}`, 'join'));
      else if (m.endpoints) finish(null, m.endpoints);
      else if (m.registered) seen = m.registered;
    });
  });
}
