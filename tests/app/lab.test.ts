/** createLab (main/lab/lab.ts): real host facts, delegation to the engine, event fan-out. */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import type { GenerateResult, LabEvent } from '../../main/lab/contract';
import { createLab, detectDevices } from '../../main/lab/lab';
import { FAKE_MODEL } from './fakeLab';
import { useTempCache } from '../support/model-cache';

describe('createLab', () => {
  it('reports the host: CPUs, memory, and the execution providers onnxruntime-node offers', async () => {
    const info = await createLab({ version: '9.9.9' }).info();
    expect(info).toMatchObject({ apiVersion: 1, version: '9.9.9', cpus: os.availableParallelism(), memoryBytes: os.totalmem() });
    expect(info.devices[0]).toBe('cpu');
    expect(info.devices.every((d) => ['cpu', 'webgpu', 'cuda'].includes(d))).toBe(true);
    expect(structuredClone(info)).toEqual(info);
  });

  it('detects the bundled WebGPU provider on linux-x64', async () => {
    if (process.platform !== 'linux' || process.arch !== 'x64') return;
    expect(await detectDevices()).toContain('webgpu');
  });

  it('delegates listModels with the given paths', async () => {
    const seen: unknown[] = [];
    const lab = createLab({ listModels: async (req) => (seen.push(req), [FAKE_MODEL]) });
    expect(await lab.listModels({ paths: ['/m'] })).toEqual([FAKE_MODEL]);
    expect(seen).toEqual([{ paths: ['/m'] }]);
  });

  it('fans engine events out to every subscriber until they unsubscribe', async () => {
    const token: LabEvent = { kind: 'token', requestId: 'r', tokenId: 7, text: 'x' };
    const lab = createLab({
      generate: async (_req, o) => {
        o.onEvent?.(token);
        return { token_ids: [7] } as GenerateResult;
      },
    });
    const a: LabEvent[] = [];
    const b: LabEvent[] = [];
    const offA = lab.onEvent((e) => a.push(e));
    lab.onEvent(() => {
      throw new Error('a broken subscriber');
    });
    lab.onEvent((e) => b.push(e));
    await lab.generate({ model: 'synth-llama-tiny', parallel: 'single', maxNewTokens: 1 });
    offA();
    await lab.generate({ model: 'synth-llama-tiny', parallel: 'single', maxNewTokens: 1 });
    expect(a).toEqual([token]);
    expect(b).toEqual([token, token]);
  });

  it("generate: token events carry the caller's requestId, cancel() aborts that run only, and an id in use is refused", async () => {
    const signals = new Map<string, AbortSignal>();
    const release = new Map<string, () => void>();
    const lab = createLab({
      generate: async (_req, o) => {
        signals.set(o.requestId!, o.signal!);
        o.onEvent?.({ kind: 'token', requestId: o.requestId!, tokenId: 1, text: 'a' });
        await new Promise<void>((r) => release.set(o.requestId!, r));
        return { token_ids: [1], finish_reason: o.signal!.aborted ? 'stop' : 'length' } as GenerateResult;
      },
    });
    const events: LabEvent[] = [];
    lab.onEvent((e) => events.push(e));
    const a = lab.generate({ requestId: 'a', model: 'm', parallel: 'single', maxNewTokens: 5 });
    const b = lab.generate({ requestId: 'b', model: 'm', parallel: 'single', maxNewTokens: 5 });
    await new Promise((r) => setTimeout(r, 0));
    expect(events.map((e) => e.kind === 'token' && e.requestId)).toEqual(['a', 'b']);
    await expect(lab.generate({ requestId: 'a', model: 'm', parallel: 'single', maxNewTokens: 5 })).rejects.toThrow(/'a' is already running/);
    await expect(lab.generate({ requestId: '', model: 'm', parallel: 'single', maxNewTokens: 5 })).rejects.toThrow(/non-empty string/);
    await lab.cancel('a');
    expect(signals.get('a')!.aborted).toBe(true);
    expect(signals.get('b')!.aborted).toBe(false);
    await lab.cancel('nobody'); // neither a generate nor a chat turn: nothing happens
    release.get('a')!();
    release.get('b')!();
    expect((await a).finish_reason).toBe('stop');
    expect((await b).finish_reason).toBe('length');
    // the id is free again once its run ended
    const again = lab.generate({ requestId: 'a', model: 'm', parallel: 'single', maxNewTokens: 5 });
    await new Promise((r) => setTimeout(r, 0));
    release.get('a')!();
    expect((await again).token_ids).toEqual([1]);
  });
});

describe('createLab over real rank processes (synth-llama-tiny)', () => {
  useTempCache('lab');
  it('cancel() ends a running generate after the current step with finish_reason stop', async () => {
    const lab = createLab();
    const seen: number[] = [];
    lab.onEvent((e) => {
      if (e.kind === 'token' && e.requestId === 'g1' && seen.push(e.tokenId) === 3) void lab.cancel('g1');
    });
    const r = await lab.generate({ requestId: 'g1', model: 'synth-llama-tiny', parallel: 'tp=2', promptIds: [1, 2, 3], maxNewTokens: 500, ignoreEos: true, threadsPerRank: 1 });
    expect(r.finish_reason).toBe('stop');
    // the abort is seen on the token that asked for it
    expect(seen).toHaveLength(3);
    expect(r.token_ids).toEqual(seen);
  }, 60_000);
});
