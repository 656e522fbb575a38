/** createLab (main/lab/lab.ts): real host facts, delegation to the engine, event fan-out. */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import type { GenerateResult, LabEvent } from '../../main/lab/contract';
import { createLab, detectDevices } from '../../main/lab/lab';
import { FAKE_MODEL } from './fakeLab';

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
});
