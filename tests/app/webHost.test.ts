/** The web host (main/server): token, Host and Origin checks, the Lab API over WebSocket, static files with the CSP. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CONTENT_SECURITY_POLICY, CSP_HEADER } from '../../main/csp';
import { startWebHost, type WebHost } from '../../main/server';
import { FAKE_MODEL, fakeLab, type FakeLab } from './fakeLab';

let dir: string;
let host: WebHost;
let lab: FakeLab;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'paralab-webhost-'));
  const root = join(dir, 'renderer');
  mkdirSync(join(root, 'assets'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>ParaLab</title>');
  writeFileSync(join(root, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(root, 'assets', 'app.css'), 'body{}');
  writeFileSync(join(dir, 'secret.txt'), 'outside the root');
  symlinkSync(join(dir, 'secret.txt'), join(root, 'link.txt'));
  lab = fakeLab();
  host = await startWebHost({ lab, staticDir: root });
  port = Number(new URL(host.url).port);
});
afterAll(async () => {
  await host.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}
/** A raw GET, so the test controls the Host header and the path bytes. */
function get(path: string, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
const withToken = (path: string) => `${path}${path.includes('?') ? '&' : '?'}token=${host.token}`;

/** Opens a socket; resolves with it when open, rejects with the HTTP status when refused. */
function openSocket(query: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api${query}`, { headers: { origin: `http://127.0.0.1:${port}`, ...headers } });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}
function call(ws: WebSocket, msg: unknown): Promise<any> {
  return new Promise((resolve) => {
    ws.once('message', (data) => resolve(JSON.parse(data.toString())));
    ws.send(JSON.stringify(msg));
  });
}

describe('web host: HTTP', () => {
  it('binds to 127.0.0.1 and prints a URL with a long random token', () => {
    expect(host.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(host.pageUrl).toBe(`${host.url}?token=${host.token}`);
    expect(host.token.length).toBeGreaterThanOrEqual(40);
  });

  it('answers 401 without the token or with a wrong one', async () => {
    expect((await get('/')).status).toBe(401);
    expect((await get('/assets/app.js')).status).toBe(401);
    expect((await get('/?token=wrong')).status).toBe(401);
    expect((await get(`/?token=${host.token.slice(0, -1)}x`)).status).toBe(401);
  });

  it('serves the page with the CSP and a token cookie that then authorises its assets', async () => {
    const page = await get(withToken('/'));
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(CSP_HEADER);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const cookie = String(page.headers['set-cookie']).split(';')[0];
    expect(String(page.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/);
    const js = await get('/assets/app.js', { cookie });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['content-security-policy']).toBe(CSP_HEADER);
    expect((await get('/assets/app.css', { cookie })).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await get('/assets/app.js', { cookie: `${cookie.split('=')[0]}=nope` })).status).toBe(401);
  });

  it('refuses a foreign Host header (DNS rebinding), even with the token', async () => {
    expect((await get(withToken('/'), { host: `evil.example:${port}` })).status).toBe(403);
    expect((await get(withToken('/'), { host: '127.0.0.1:1' })).status).toBe(403);
    expect((await get(withToken('/'), { host: `localhost:${port}` })).status).toBe(200);
  });

  it('never serves anything outside the renderer folder', async () => {
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2e%2e%5csecret.txt', '/link.txt', '/assets', '/assets/', '/index.html%00.js']) {
      const res = await get(withToken(p));
      expect(res.status, p).toBe(404);
      expect(res.body).not.toContain('outside the root');
    }
  });

  it('keeps the CSP of the <meta> in renderer/index.html equal to the one main sends', () => {
    const html = readFileSync(join(__dirname, '../../renderer/index.html'), 'utf8');
    const meta = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1];
    expect(meta).toBe(CONTENT_SECURITY_POLICY);
    expect(CSP_HEADER.startsWith(CONTENT_SECURITY_POLICY)).toBe(true);
  });
});

describe('web host: Lab API over WebSocket', () => {
  it('refuses a socket without the token, with a wrong one, from another origin or for another Host', async () => {
    await expect(openSocket('')).rejects.toThrow('HTTP 401');
    await expect(openSocket('?token=wrong')).rejects.toThrow('HTTP 401');
    await expect(openSocket(`?token=${host.token}`, { origin: 'http://evil.example' })).rejects.toThrow('HTTP 403');
    await expect(openSocket(`?token=${host.token}`, { origin: `http://localhost:${port}` })).rejects.toThrow('HTTP 403');
    await expect(openSocket(`?token=${host.token}`, { host: `evil.example:${port}`, origin: `http://evil.example:${port}` })).rejects.toThrow('HTTP 403');
  });

  it('calls info and listModels, reports lab errors and refuses unknown methods', async () => {
    const ws = await openSocket(`?token=${host.token}`);
    try {
      expect(await call(ws, { v: 1, id: 1, method: 'info', params: [] })).toEqual({
        v: 1,
        id: 1,
        ok: true,
        result: { apiVersion: 1, version: 'test', platform: 'linux-x64', cpus: 2, memoryBytes: 1 << 30, devices: ['cpu'], dataPlane: { transport: 'shm', reason: 'test' } },
      });
      const listed = await call(ws, { v: 1, id: 2, method: 'listModels', params: [{ paths: ['/models/a'] }] });
      expect(listed).toMatchObject({ v: 1, id: 2, ok: true });
      expect(listed.result.map((m: typeof FAKE_MODEL) => m.id)).toEqual(['synth-llama-tiny', '/models/a']);
      expect(lab.calls.at(-1)).toEqual({ method: 'listModels', args: [{ paths: ['/models/a'] }] });
      expect(await call(ws, { v: 1, id: 3, method: 'generate', params: [{ model: 'x', parallel: 'single', maxNewTokens: 1 }] })).toEqual({
        v: 1,
        id: 3,
        ok: false,
        error: { code: 'unknown-preset', message: "unknown model 'x'" },
      });
      for (const method of ['onEvent', 'constructor', '__proto__', 'toString', 'emit']) {
        expect(await call(ws, { v: 1, id: 4, method, params: [] })).toMatchObject({ id: 4, ok: false, error: { code: 'unknown_method' } });
      }
      expect(await call(ws, { v: 2, id: 5, method: 'info' })).toMatchObject({ id: 5, ok: false, error: { code: 'bad_request' } });
      expect(await call(ws, 'not an envelope')).toMatchObject({ id: -1, ok: false, error: { code: 'bad_request' } });
    } finally {
      ws.close();
    }
  });

  it('pushes lab events to connected clients', async () => {
    const ws = await openSocket(`?token=${host.token}`);
    const got = new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()))));
    lab.emit({ kind: 'log', level: 'info', message: 'hi' });
    expect(await got).toEqual({ v: 1, event: { kind: 'log', level: 'info', message: 'hi' } });
    ws.close();
  });
});
