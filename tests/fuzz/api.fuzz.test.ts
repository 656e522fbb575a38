/**
 * Fuzzing the Lab API over the web host's WebSocket, with the real lab
 * behind it (its validators, run store, chat service and model catalog;
 * only `generate` is a recorder, so an accepted request does not start
 * ranks): every method with arbitrary arguments, mutations of valid
 * requests, and raw frames that are not requests at all.
 *
 * Properties: every request is answered, under its id; an error is one
 * non-empty line with a code and never 'internal' (a JavaScript error
 * escaping the lab); the connection stays open; and after thousands of
 * cases the host still answers info().
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import WebSocket from 'ws';
import { startWebHost, type WebHost } from '../../main/server';
import { createLab } from '../../main/lab/lab';
import { closeAllChats } from '../../main/lab/chat';
import { LAB_METHODS, type GenerateResult, type WireMessage } from '../../main/lab/contract';
import { params } from './fuzz-helpers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'paralab-fuzz-api-'));
let host: WebHost;
let ws: WebSocket;
let nextId = 1;
const accepted: unknown[] = [];
const pending = new Map<number, (m: WireMessage) => void>();

const RESULT: GenerateResult = {
  token_ids: [],
  text: '',
  finish_reason: 'length',
  prompt_ids: [],
  metrics: { prompt_tokens: 0, output_tokens: 0, load_ms: 0, ttft_ms: 0, tpot_ms: 0, e2el_ms: 0, prefill_tok_s: 0, output_tok_s: 0 },
  ranks: [],
  comm: [],
};

beforeAll(async () => {
  mkdirSync(path.join(dir, 'renderer'));
  writeFileSync(path.join(dir, 'renderer', 'index.html'), '<!doctype html>');
  const lab = createLab({ generate: async (req) => (accepted.push(req), RESULT), devices: async () => ['cpu'], runsDir: path.join(dir, 'runs') });
  host = await startWebHost({ lab, staticDir: path.join(dir, 'renderer'), log: () => undefined });
  const port = new URL(host.url).port;
  ws = await new Promise<WebSocket>((resolve, reject) => {
    const s = new WebSocket(`ws://127.0.0.1:${port}/api?token=${host.token}`, { origin: `http://127.0.0.1:${port}` });
    s.once('open', () => resolve(s));
    s.once('error', reject);
  });
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as WireMessage;
    if ('id' in m) pending.get(m.id)?.(m);
  });
});

afterAll(async () => {
  ws.close();
  await Promise.all([host.close(), closeAllChats()]);
  rmSync(dir, { recursive: true, force: true });
});

/** Send one raw frame and wait for the reply under `id`. */
function roundTrip(frame: string, id: number): Promise<WireMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply within 10 s to ${frame.slice(0, 200)}`)), 10_000);
    pending.set(id, (m) => {
      clearTimeout(timer);
      pending.delete(id);
      resolve(m);
    });
    ws.send(frame);
  });
}

/** outcomes seen: 'ok' or the error code (the fuzz must reach past the validators, too) */
const seen = new Map<string, number>();

function expectAnswered(m: WireMessage, what: () => string): void {
  expect('ok' in m, what()).toBe(true);
  if ('ok' in m) seen.set(m.ok ? 'ok' : m.error.code, (seen.get(m.ok ? 'ok' : m.error.code) ?? 0) + 1);
  if ('ok' in m && !m.ok) {
    expect(typeof m.error.code === 'string' && m.error.code.length > 0, what()).toBe(true);
    expect(m.error.code, `${what()} → ${m.error.message}`).not.toBe('internal');
    expect(m.error.message.length > 0 && !/[\n\r]/.test(m.error.message), what()).toBe(true);
  }
}

/** Valid requests of every method, to mutate one field at a time. */
const VALID: Record<string, unknown[]> = {
  generate: [{ model: 'fuzz-model', parallel: 'single', maxNewTokens: 4, promptIds: [1, 2] }],
  checkSpec: [{ model: 'fuzz-model', parallel: 'tp=2' }],
  startBench: [{ model: 'fuzz-model', specs: ['tp=2'], workload: 'decode' }],
  chat: [{ requestId: 'r', model: 'fuzz-model', parallel: 'single', messages: [{ role: 'user', content: 'hi' }], maxNewTokens: 4 }],
  exportReport: [{ runIds: ['x'], format: 'md' }],
  listModels: [{ paths: [] }],
  getRun: ['x'],
  getTrace: ['x'],
  deleteRun: ['x'],
  cancel: ['x'],
  cancelBench: ['x'],
  claims: [[]],
  info: [],
  listJobs: [],
  listRuns: [],
};

const value = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 1.5, 1e9, -1e9, Number.MAX_SAFE_INTEGER, '', ' ', 'tp=2', 'synth-llama-tiny', '../../etc/passwd', null, [], {}, [null], true),
);

/** A valid request with one field replaced, removed or added. */
const mutated = fc.record({ method: fc.constantFrom(...Object.keys(VALID)), key: fc.string({ maxLength: 12 }), pick: fc.nat(), v: value, op: fc.constantFrom('set', 'drop', 'add') }).map(({ method, key, pick, v, op }) => {
  const args = structuredClone(VALID[method]);
  const target = args[0];
  if (target && typeof target === 'object' && !Array.isArray(target)) {
    const keys = Object.keys(target);
    const k = op === 'add' || keys.length === 0 ? key : keys[pick % keys.length];
    if (op === 'drop') delete (target as Record<string, unknown>)[k];
    else (target as Record<string, unknown>)[k] = v;
  } else if (args.length > 0) args[0] = v;
  else args.push(v);
  return { method, params: args as unknown };
});

describe('the Lab API over the WebSocket', () => {
  it('answers every method with arbitrary arguments, never with internal', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...LAB_METHODS), fc.oneof(fc.array(value, { maxLength: 3 }), value), async (method, p) => {
        const id = nextId++;
        const m = await roundTrip(JSON.stringify({ v: 1, id, method, params: p }), id);
        expectAnswered(m, () => `${method}(${JSON.stringify(p)?.slice(0, 300)})`);
      }),
      params(2000),
    );
  }, 120_000);

  it('answers mutations of valid requests, never with internal', async () => {
    await fc.assert(
      fc.asyncProperty(mutated, async ({ method, params: p }) => {
        const id = nextId++;
        const m = await roundTrip(JSON.stringify({ v: 1, id, method, params: p }), id);
        expectAnswered(m, () => `${method}(${JSON.stringify(p)?.slice(0, 300)})`);
      }),
      params(1500),
    );
    // mutations of valid requests get past the validators (accepted, or refused by the lab itself)
    expect(accepted.length).toBeGreaterThan(0);
    expect([...seen.keys()].filter((k) => k !== 'ok' && k !== 'bad_request').length, JSON.stringify([...seen])).toBeGreaterThan(0);
  }, 120_000);

  it('answers frames that are not requests (under the id they carry, else -1)', async () => {
    const frame = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
      fc.record({ v: fc.oneof(fc.constant(1), value), id: fc.oneof(fc.nat(), value), method: fc.oneof(fc.string({ maxLength: 20 }), value), params: value }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
    );
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        // answered under the integer id the frame carries (even a negative one, refused), else under -1
        let id = -1;
        try {
          const o = JSON.parse(f) as { id?: unknown };
          if (typeof o === 'object' && o !== null && typeof o.id === 'number' && Number.isInteger(o.id)) id = o.id;
        } catch {
          // not JSON
        }
        if (id >= 0 && id < 1e9) {
          // keep clear of the ids the other properties use
          id += 1e9;
          f = JSON.stringify({ ...(JSON.parse(f) as object), id });
        }
        const m = await roundTrip(f, id);
        expectAnswered(m, () => f.slice(0, 300));
      }),
      params(1500),
    );
  }, 120_000);

  it('still serves after all of it', async () => {
    const id = nextId++;
    const m = await roundTrip(JSON.stringify({ v: 1, id, method: 'info', params: [] }), id);
    expect(m).toMatchObject({ ok: true, result: { apiVersion: 1 } });
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });
});
