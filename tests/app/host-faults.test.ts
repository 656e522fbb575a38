/**
 * Issue 12's numbered failures, one test each (each failed on the main of
 * 2026-12-03): nothing a client or a fault does takes the host down or
 * passes for success.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startWebHost, type WebHost } from '../../main/server';
import { createLab } from '../../main/lab/lab';
import { createChat } from '../../main/lab/chat';
import { sweepTempFolders } from '../../main/lab/durable';
import { workloadNotes } from '../../main/lab/bench-record';
import { Engine } from '../../main/engine/host/engine';
import type { GenerateResult, LabEvent, WireMessage } from '../../main/lab/contract';
import { lab as cli, ROOT } from '../support/cli';
import { FAKE_MODEL } from './fakeLab';

const readFileOr = (f: string) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};

const dir = mkdtempSync(path.join(os.tmpdir(), 'paralab-host-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FAKE_RESULT: GenerateResult = {
  token_ids: [1],
  text: 'x',
  finish_reason: 'length',
  prompt_ids: [1],
  metrics: { prompt_tokens: 1, output_tokens: 1, load_ms: 0, ttft_ms: 0, tpot_ms: 0, e2el_ms: 0, prefill_tok_s: 0, output_tok_s: 0 },
  ranks: [],
  comm: [],
};

describe('the web host', () => {
  let host: WebHost;
  let port: number;
  const generated: unknown[] = [];
  beforeAll(async () => {
    mkdirSync(path.join(dir, 'renderer'), { recursive: true });
    writeFileSync(path.join(dir, 'renderer', 'index.html'), '<!doctype html>');
    const lab = createLab({
      listModels: async () => [FAKE_MODEL],
      generate: async (req) => (generated.push(req), FAKE_RESULT),
      devices: async () => ['cpu'],
      runsDir: path.join(dir, 'runs'),
    });
    host = await startWebHost({ lab, staticDir: path.join(dir, 'renderer'), log: () => undefined });
    port = Number(new URL(host.url).port);
  });
  afterAll(() => host.close());

  const connect = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api?token=${host.token}`, { origin: `http://127.0.0.1:${port}` });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const call = (ws: WebSocket, id: number, method: string, params: unknown) =>
    new Promise<WireMessage>((resolve) => {
      const on = (d: WebSocket.RawData) => {
        const m = JSON.parse(d.toString()) as WireMessage;
        if ('id' in m && m.id === id) {
          ws.off('message', on);
          resolve(m);
        }
      };
      ws.on('message', on);
      ws.send(JSON.stringify({ v: 1, id, method, params }));
    });

  it('1. a frame over 4 MiB closes only that client, with 1009 (message too big); the host and its other clients go on', async () => {
    const bystander = await connect();
    const big = await connect();
    const closed = new Promise<number>((resolve) => big.once('close', (code) => resolve(code)));
    big.on('error', () => undefined);
    big.send('x'.repeat(5 << 20));
    expect(await closed).toBe(1009);
    const r = await call(bystander, 1, 'info', []);
    expect(r).toMatchObject({ ok: true });
    const fresh = await connect();
    expect(await call(fresh, 2, 'listModels', [{}])).toMatchObject({ ok: true });
    bystander.close();
    fresh.close();
  });

  it('6. malformed API arguments are one bad_request line each, never internal', async () => {
    const ws = await connect();
    const cases: [string, unknown[], RegExp][] = [
      ['generate', [], /generate takes one argument, got 0/],
      ['generate', [null], /generate must be an object, got null/],
      ['generate', [{ model: 'm', parallel: 'single' }], /'maxNewTokens' is required/],
      ['generate', [{ model: 'm', parallel: 'single', maxNewTokens: -3 }], /maxNewTokens must be >= 1, got -3/],
      ['generate', [{ model: 'm', parallel: 'single', maxNewTokens: 4, threadsPerRank: 1_000_000 }], /threadsPerRank must be <= \d+, got 1000000/],
      ['generate', [{ model: 'm', parallel: 'single', maxNewTokens: 4, sampling: { temperature: -1 } }], /sampling\.temperature must be >= 0/],
      ['generate', [{ model: 'm', parallel: 'single', maxNewTokens: 4, bogus: 1 }], /unknown field 'bogus'/],
      ['chat', [{ requestId: 'r', model: 'm', parallel: 'single', messages: [{ role: 'robot', content: 'hi' }], maxNewTokens: 4 }], /messages\.0\.role must be one of/],
      ['getRun', [42], /getRun must be a string, got 42/],
      ['claims', ['x'], /claims must be an array/],
      ['info', [1], /info takes no arguments, got 1/],
      ['startBench', [{ model: 'm', specs: [], workload: 'decode' }], /specs must NOT have fewer than 1 items/],
    ];
    let id = 10;
    for (const [method, params, want] of cases) {
      const r = await call(ws, id++, method, params);
      expect(r, `${method} ${JSON.stringify(params)}`).toMatchObject({ ok: false, error: { code: 'bad_request' } });
      const message = (r as { error: { message: string } }).error.message;
      expect(message).toMatch(want);
      expect(message).not.toContain('\n');
    }
    expect(generated).toEqual([]);
    ws.close();
  });
});

describe('the command line', () => {
  it('2. a hung rank under single fails the run (exit 1, the rank and the phase named) instead of exiting 0', async () => {
    const t0 = Date.now();
    const r = await cli(['generate', '--model', 'synth-llama-tiny', '--parallel', 'single', '--prompt-ids', '1,2,3', '--max-new-tokens', '8', '--timeout', '2'], { PARALAB_FAULT: 'rank=0,phase=decode,kind=stall,after=1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/lab: rank 0 did not finish 'decode step' within \d+\.\d s .*raise --timeout/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('3. threads per rank are bounded by the machine (CLI and API)', async () => {
    const max = 2 * os.availableParallelism();
    const r = await cli(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2', '--threads-per-rank', '1000000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--threads-per-rank must be an integer from 1 to ${max}`);
    await expect(Engine.start({ model: 'synth-llama-tiny', parallel: 'single', threadsPerRank: 1_000_000 })).rejects.toThrow(`from 1 to ${max}`);
  });

  it('6. negative numbers are refused by the option, not as "ambiguous"', async () => {
    const a = await cli(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2', '--max-new-tokens', '-3']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("--max-new-tokens must be an integer ≥ 1, got '-3'");
    const b = await cli(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2', '--temperature', '-1']);
    expect(b.stderr).toMatch(/temperature must be ≥ 0, got -1/);
    expect(b.stderr).not.toMatch(/ambiguous/);
  });

  it('5. killing the CLI while a rank is inside a step ends every rank within a second, without stack traces', async () => {
    // rank 1 spins in its JS thread (as inside a long session.run): no message handler of it can run
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'main/cli/index.ts'), 'generate', '--model', 'synth-llama-tiny', '--parallel', 'tp=2', '--prompt-ids', '1,2,3', '--max-new-tokens', '8', '--timeout', '600'], {
      cwd: ROOT,
      env: { ...process.env, PARALAB_FAULT: 'rank=1,phase=decode,kind=spin,after=1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // the first token is printed after the prefill; the second step never ends
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 300));
    const ranks = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).split('\n').map(Number).filter((n) => n > 0);
    expect(ranks).toHaveLength(2);
    child.kill('SIGKILL');
    const t0 = Date.now();
    // dead = gone or a zombie (re-parented to init, which reaps it when it gets to it)
    const alive = () => ranks.filter((p) => existsSync(`/proc/${p}/status`) && !/^State:\s+Z/m.test(readFileOr(`/proc/${p}/status`)));
    while (alive().length > 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 25));
    expect(alive()).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(stderr).not.toMatch(/EPIPE|at .*\.js:\d+/);
  });
});

describe('the lab', () => {
  it('4. a warm chat engine whose rank died while idle serves the next turn (restarted), not the stale error', async () => {
    const events: LabEvent[] = [];
    const chat = createChat((e) => events.push(e));
    const turn = (requestId: string) => chat.chat({ requestId, model: 'synth-llama-tiny', parallel: 'tp=2', threadsPerRank: 1, messages: [{ role: 'user', content: 'hi' }], maxNewTokens: 4 });
    try {
      const first = await turn('t1');
      const pids = first.ranks.map((r) => r.pid);
      process.kill(pids[1], 'SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
      const second = await turn('t2');
      expect(second.token_ids).toEqual(first.token_ids);
      expect(second.ranks.map((r) => r.pid)).not.toContain(pids[1]);
    } finally {
      await chat.close();
    }
  });

  it('6. stale temp folders of a crashed writer are swept; a live writer\'s and complete runs are kept', () => {
    const runs = path.join(dir, 'sweep');
    const dead = path.join(runs, '.2026-run-a.999999999.tmp');
    const live = path.join(runs, `.2026-run-b.${process.pid}.tmp`);
    const done = path.join(runs, '2026-run-c');
    for (const d of [dead, live, done]) mkdirSync(d, { recursive: true });
    writeFileSync(path.join(done, 'run.json'), '{}');
    writeFileSync(path.join(done, 'run.json.999999999.tmp'), '{');
    const removed = sweepTempFolders(runs);
    expect(removed.sort()).toEqual([dead, path.join(done, 'run.json.999999999.tmp')].sort());
    expect(existsSync(live)).toBe(true);
    expect(readdirSync(done)).toEqual(['run.json']);
  });

  it('6. a decode bench of sp>1 carries the note that SP cannot split one token', () => {
    expect(workloadNotes('decode', { sp: 2, spImpl: 'ulysses' })[0]).toMatch(/cannot split/);
    expect(workloadNotes('prefill', { sp: 2, spImpl: 'ulysses' })).toEqual([]);
    expect(workloadNotes('decode', { sp: 1, spImpl: 'ulysses' })).toEqual([]);
  });
});
