/**
 * Ranks that are not children of the host: `lab worker --join HOST:PORT`
 * processes (as on another machine) serve the last ranks of a plan over TCP,
 * control plane and data plane alike, and the plan still reproduces single.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { verify } from '../../main/engine/host/verify';
import { ROOT } from '../support/cli';

let cache: string;
const workers: ChildProcess[] = [];
beforeAll(() => {
  cache = mkdtempSync(path.join(os.tmpdir(), 'paralab-remote-'));
  process.env.PARALAB_CACHE = cache;
});
afterAll(() => {
  for (const w of workers) w.kill('SIGKILL');
  rmSync(cache, { recursive: true, force: true });
});

it('tp=2 with one rank joined from `lab worker --join` matches single', async () => {
  const r = await verify({
    model: 'synth-llama-tiny',
    parallel: 'tp=2',
    promptIds: [1, 2, 3, 200, 17],
    maxNewTokens: 6,
    threadsPerRank: 1,
    remote: {
      listen: '127.0.0.1:0',
      count: 1,
      onListening: (address) => {
        const w = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'main/cli/index.ts'), 'worker', '--join', address], { cwd: ROOT, stdio: 'ignore', env: process.env });
        workers.push(w);
      },
    },
  });
  expect(r.passed).toBe(true);
  expect(r.tokens_equal).toBe(true);
  // the worker exits by itself when the host ends the run
  await new Promise<void>((resolve) => (workers[0].exitCode !== null ? resolve() : workers[0].once('exit', () => resolve())));
  expect(workers[0].exitCode).toBe(0);
});
