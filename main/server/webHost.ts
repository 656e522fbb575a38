/**
 * The web host: the built renderer and the Lab API for a browser, on
 * 127.0.0.1 by default (headless GPU boxes; the way tests drive the UI).
 *
 *   GET  /…      static files of out/renderer, with the app's CSP
 *   WS   /api    the Lab API (wsApi.ts)
 *
 * Every request must pass guard.ts: allowed Host, the launch token (query or
 * cookie for pages, query for the socket), same Origin for the socket.
 */
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { CSP_HEADER } from '../csp';
import type { LabApi } from '../lab/contract';
import { allowedHosts, cookieToken, hostAllowed, newToken, originAllowed, tokenCookie, tokenMatches } from './guard';
import { contentType, resolveStatic } from './static';
import { serveLabSocket } from './wsApi';

export interface WebHostOptions {
  host?: string;
  port?: number;
  lab: LabApi;
  staticDir?: string;
  /** fixed token (tests); a fresh random one otherwise */
  token?: string;
  /** where a dropped client is reported (lab serve: stderr) */
  log?: (message: string) => void;
}

export interface WebHost {
  /** origin and path of the app, without the token */
  url: string;
  token: string;
  /** the URL to open: `url` with `?token=` */
  pageUrl: string;
  close(): Promise<void>;
}

/** The largest Lab API message a client may send (a request is a few KB; 4 MiB leaves room for long prompts). */
export const MAX_MESSAGE_BYTES = 4 << 20;

const SECURITY_HEADERS = {
  'Content-Security-Policy': CSP_HEADER,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-cache',
};

export async function startWebHost(o: WebHostOptions): Promise<WebHost> {
  const host = o.host ?? '127.0.0.1';
  const token = o.token ?? newToken();
  const root = resolve(o.staticDir ?? 'out/renderer');
  // the largest message a client may send: bigger frames close that client with 1009
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  let port = 0;
  let hosts = new Set<string>();

  const server = createServer((req, res) => void handleHttp(req, res));
  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!hostAllowed(req.headers.host, hosts)) return reply(res, 403, 'wrong Host header');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'only GET and HEAD');
    const queryToken = url.searchParams.get('token');
    const viaQuery = tokenMatches(queryToken, token);
    if (!viaQuery && !tokenMatches(cookieToken(req.headers.cookie, port), token)) {
      return reply(res, 401, 'ParaLab: open the URL printed by `lab serve`, with its ?token=');
    }
    if (url.pathname === '/api') return reply(res, 426, 'the Lab API is a WebSocket');
    const file = await resolveStatic(root, url.pathname);
    if (!file) return reply(res, 404, 'not found');
    const headers: Record<string, string> = { ...SECURITY_HEADERS, 'Content-Type': contentType(file) };
    if (viaQuery) headers['Set-Cookie'] = tokenCookie(token, port);
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const hostHeader = req.headers.host ?? '';
    // a client that resets mid-handshake must not take the host down
    socket.on('error', () => socket.destroy());
    const refuse = (status: string) => socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    if (url.pathname !== '/api') return refuse('404 Not Found');
    if (!hostAllowed(hostHeader, hosts)) return refuse('403 Forbidden');
    if (!originAllowed(req.headers.origin, hostHeader)) return refuse('403 Forbidden');
    if (!tokenMatches(url.searchParams.get('token'), token)) return refuse('401 Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => serveLabSocket(ws, o.lab, o.log));
  });

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 0, host, () => ok());
  });
  port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(host, port);
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const base = `http://${shownHost}:${port}/`;

  return {
    url: base,
    token,
    pageUrl: `${base}?token=${token}`,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

function reply(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text + '\n');
}
