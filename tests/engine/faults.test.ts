/**
 * The fault matrix (issue 12): a chosen rank crashes, hangs (SIGSTOP), stalls,
 * spins or answers with a malformed reply at a chosen phase — load, prefill,
 * decode step, the EP all-to-all, the SP ring pass, a serving join — over
 * each transport (shared memory, Unix sockets, TCP on loopback). For every case: the run fails
 * with the faulty rank and the phase named, within the bound stated for that
 * kind of fault; no rank process is left; nothing is left in /dev/shm; and
 * afterwards a clean run on the same transport works and matches single.
 *
 * Faults are injected with PARALAB_FAULT (main/engine/rank/fault.ts), which
 * the forked ranks inherit from this process's environment.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../main/engine/host/engine';
import { serve } from '../../main/engine/host/serving';
import { shmAddon } from '../../main/engine/comm/shm-native';
import { bench } from '../../main/lab/bench';
import type { FaultKind, FaultPhase } from '../../main/engine/rank/fault';

const HEARTBEAT_MS = 1500;
const TIMEOUT_MS = 2000;
/** what each kind of fault may take to be reported, from the start of the run's work (with room for a loaded CI machine) */
const BOUND_MS: Record<FaultKind, number> = {
  crash: 1500 + 3000,
  corrupt: 500 + 3000,
  hang: HEARTBEAT_MS + 3000,
  stall: TIMEOUT_MS + 2000 + 3000,
  spin: TIMEOUT_MS + 2000 + 3000,
};

const transports = (shmAddon() ? ['shm', 'unix', 'tcp'] : ['unix', 'tcp']) as ('shm' | 'unix' | 'tcp')[];

function childPids(): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there is no child
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** /dev/shm files of this host process's worlds (their ids start with this pid in base 36). */
const shmFiles = () => (existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((f) => f.startsWith(`paralab-${process.pid.toString(36)}`)) : []);

interface Case {
  phase: FaultPhase;
  kind: FaultKind;
  model: string;
  spec: string;
  /** the phase as the host names it */
  named: RegExp;
  after?: number;
  serving?: boolean;
}

const CASES: Case[] = [
  { phase: 'load', kind: 'crash', model: 'synth-llama-tiny', spec: 'tp=2', named: /'load'/ },
  { phase: 'load', kind: 'corrupt', model: 'synth-llama-tiny', spec: 'tp=2', named: /'load'/ },
  { phase: 'prefill', kind: 'corrupt', model: 'synth-llama-tiny', spec: 'tp=2', named: /'prefill'/ },
  { phase: 'prefill', kind: 'hang', model: 'synth-llama-tiny', spec: 'pp=2', named: /'prefill'/ },
  { phase: 'decode', kind: 'hang', model: 'synth-llama-tiny', spec: 'tp=2', named: /'decode step'/, after: 1 },
  { phase: 'decode', kind: 'crash', model: 'synth-llama-tiny', spec: 'tp=2', named: /'decode step'/, after: 2 },
  { phase: 'decode', kind: 'spin', model: 'synth-llama-tiny', spec: 'tp=2', named: /'decode step'/, after: 1 },
  { phase: 'all-to-all', kind: 'stall', model: 'synth-moe-tiny', spec: 'dp=2,ep=2', named: /'prefill'.*all_to_all/ },
  // synth-moe-tiny: 4 MoE layers × (dispatch + combine) = 8 all-to-alls a step; the 10th is in the first decode step
  { phase: 'all-to-all', kind: 'crash', model: 'synth-moe-tiny', spec: 'dp=2,ep=2', named: /'decode step'/, after: 9 },
  { phase: 'ring', kind: 'crash', model: 'synth-llama-tiny', spec: 'sp=2,sp_impl=ring', named: /'prefill'/ },
  { phase: 'ring', kind: 'stall', model: 'synth-llama-tiny', spec: 'sp=2,sp_impl=ring', named: /'prefill'.*(send|recv)/ },
  { phase: 'join', kind: 'corrupt', model: 'synth-llama-tiny', spec: 'tp=2', named: /'serving join'/, after: 1, serving: true },
  { phase: 'join', kind: 'spin', model: 'synth-llama-tiny', spec: 'tp=2', named: /'serving join'/, after: 1, serving: true },
];

const PROMPT = [3, 14, 15, 92, 65, 35, 89, 79];

async function run(c: Case, transport: (typeof transports)[number]): Promise<{ error: Error; ms: number }> {
  process.env.PARALAB_FAULT = `rank=1,phase=${c.phase},kind=${c.kind},after=${c.after ?? 0}`;
  const t0 = performance.now();
  let engine: Engine | null = null;
  try {
    engine = await Engine.start({ model: c.model, parallel: c.spec, transport, timeoutMs: TIMEOUT_MS, heartbeatTimeoutMs: HEARTBEAT_MS, threadsPerRank: 1 });
    const started = performance.now();
    if (c.serving) {
      const reqs = [0, 1, 2].map((id) => ({ id, arrivalMs: id * 40, prompt: PROMPT.slice(0, 4 + id), maxNewTokens: 6 }));
      await serve(engine, reqs, { ignoreEos: true });
    } else {
      await engine.generate([PROMPT], { maxNewTokens: 6, ignoreEos: true });
    }
    throw new Error(`the run finished although rank 1 was to ${c.kind} at ${c.phase} (${performance.now() - started} ms)`);
  } catch (e) {
    return { error: e as Error, ms: performance.now() - t0 };
  } finally {
    delete process.env.PARALAB_FAULT;
    await engine?.close();
  }
}

afterEach(() => {
  delete process.env.PARALAB_FAULT;
});

describe.each(transports)('fault matrix over %s', (transport) => {
  it.each(CASES.map((c) => [`${c.kind} at ${c.phase} (${c.spec})`, c] as const))('%s: fails naming rank 1 and the phase, in time, leaving nothing behind', async (_, c) => {
    const before = childPids();
    const { error, ms } = await run(c, transport);
    expect(error.message).not.toMatch(/finished although/);
    expect(error.message).toMatch(/rank 1\b/);
    expect(error.message).toMatch(c.named);
    expect(error.message).not.toContain('\n');
    // the load phase includes starting the processes (~1 s each under tsx)
    expect(ms).toBeLessThan(BOUND_MS[c.kind] + (c.phase === 'load' ? 3000 : 5000));
    // every rank of the failed run is gone within a second of the failure
    const deadline = Date.now() + 1000;
    const ours = () => childPids().filter((p) => !before.includes(p) && alive(p));
    while (ours().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(ours()).toEqual([]);
    expect(shmFiles()).toEqual([]);
  });

  it('afterwards a clean run on the same transport works and matches single', async () => {
    const single = await Engine.start({ model: 'synth-llama-tiny', parallel: 'single', threadsPerRank: 1 });
    const tp = await Engine.start({ model: 'synth-llama-tiny', parallel: 'tp=2', transport, threadsPerRank: 1 });
    try {
      const a = await single.generate([PROMPT], { maxNewTokens: 6, ignoreEos: true });
      const b = await tp.generate([PROMPT], { maxNewTokens: 6, ignoreEos: true });
      expect(b.outputs[0].tokens).toEqual(a.outputs[0].tokens);
    } finally {
      await Promise.all([single.close(), tp.close()]);
    }
  });
});

describe('a failed bench', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'paralab-fault-runs-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('leaves the complete records of the specs before it and nothing partial', async () => {
    process.env.PARALAB_FAULT = 'rank=1,phase=decode,kind=crash,after=3';
    try {
      await expect(bench({ model: 'synth-llama-tiny', specs: ['tp=2'], workload: 'decode', promptLen: 4, outputLen: 8, batch: 1, reps: 1, seed: 0, outDir: out, timeoutMs: TIMEOUT_MS })).rejects.toThrow(/rank 1 .*SIGSEGV.*'decode step'/);
    } finally {
      delete process.env.PARALAB_FAULT;
    }
    // 'single' ran first (rank 0 only, the fault is rank 1's) and was written whole; tp=2 left nothing
    const left = readdirSync(out);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/single/);
    expect(readdirSync(path.join(out, left[0])).sort()).toEqual(['run.json', 'trace.json']);
  });
});
