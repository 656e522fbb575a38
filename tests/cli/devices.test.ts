/**
 * `lab devices` lists what the ranks can run on, probing each installed GPU
 * provider for real; `--device cuda` without the CUDA provider fails before
 * any rank starts with one line that says how to install it; `--devices`
 * is refused where it cannot apply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lab } from '../support/cli';
import { localProviderFacts } from '../../main/engine/runtime/providers';
import { probeProvider } from '../../main/engine/runtime/probe';
import { createSession } from '../../main/engine/runtime/ort';
import { Engine } from '../../main/engine/host/engine';
import { GraphBuilder } from '../../main/engine/graph/onnx';
import { deviceRows, formatDevices } from '../../main/cli/devices';
import type { DevicesReport } from '../../main/cli/devices';

let tmp: string;
const env = () => ({ PARALAB_CACHE: path.join(tmp, 'cache') });
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'paralab-devices-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cudaInstalled = localProviderFacts().find((f) => f.device === 'cuda')!.installed;

function oneLine(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn') && !l.startsWith('Warning:'));
}

describe('lab devices', () => {
  it('--json lists cpu, webgpu and cuda with what works here, agreeing with a direct probe', async () => {
    const r = await lab(['devices', '--json'], env());
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as DevicesReport;
    expect(rep.onnxruntime).toMatch(/^\d+\.\d+\.\d+$/);
    expect(rep.devices.map((d) => d.device)).toEqual(['cpu', 'webgpu', 'cuda']);
    expect(rep.devices[0]).toMatchObject({ device: 'cpu', installed: true, works: true });
    const webgpu = rep.devices[1];
    const direct = await probeProvider('webgpu');
    expect(webgpu.installed).toBe(true);
    expect(webgpu.works).toBe(direct.ok);
    if (!direct.ok) expect(webgpu.problem).toMatch(/adapter|probe/);
    const cuda = rep.devices[2];
    expect(cuda.installed).toBe(cudaInstalled);
    if (!cudaInstalled) {
      expect(cuda.works).toBeNull();
      expect(cuda.problem).toMatch(/--onnxruntime-node-install=cuda12/);
    }
    expect(Array.isArray(rep.gpus)).toBe(true);
  }, 180_000);

  it('the human table names every provider and each problem', () => {
    const rows = deviceRows(
      [
        { device: 'cpu', known: true, bundled: true, installed: true, fix: null },
        { device: 'webgpu', known: true, bundled: true, installed: true, fix: null },
        { device: 'cuda', known: true, bundled: false, installed: false, fix: 'install it with cuda12' },
      ],
      { webgpu: { device: 'webgpu', ok: false, ms: 12, error: 'WebGPU found no GPU adapter: install drivers', log: '' } },
    );
    const text = formatDevices({ onnxruntime: '1.30.0', platform: 'linux-x64', devices: rows, gpus: [], vulkan_icds: [], data_plane: { transport: 'unix', reason: 'the native addon is not built' } });
    expect(text).toMatch(/^cpu\s+yes\s+yes/m);
    expect(text).toMatch(/^webgpu\s+yes\s+no\s+12 ms/m);
    expect(text).toMatch(/↳ WebGPU found no GPU adapter/);
    expect(text).toMatch(/^cuda\s+no\s+—/m);
    expect(text).toMatch(/↳ install it with cuda12/);
    expect(text).toMatch(/Vulkan drivers: none/);
    expect(text).toMatch(/^Ranks talk over: unix \(the native addon is not built\)$/m);
  });
});

describe.skipIf(cudaInstalled)('--device cuda where the CUDA provider is absent (this onnxruntime-node install has none)', () => {
  it('a rank session fails with how to install the provider', async () => {
    const g = new GraphBuilder('probe');
    const x = g.input('x', 'float32', [1]);
    g.output(g.op('Add', [x, x]), 'float32', [1]);
    const err = await createSession(g.toBytes(), { device: 'cuda', threads: 1, spin: false }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('DeviceError');
    expect(err?.message).toMatch(/CUDA execution provider is not in this onnxruntime-node install.*--onnxruntime-node-install=cuda12/);
  });

  it('Engine.start refuses before spawning any rank', async () => {
    await expect(Engine.start({ model: 'synth-llama-tiny', parallel: 'tp=2', device: 'cuda' })).rejects.toThrow(/cuda execution provider is not in this onnxruntime-node install/);
  });

  it('lab generate --device cuda: exit 1 and one line saying what to do', async () => {
    const r = await lab(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2,3', '--max-new-tokens', '2', '--device', 'cuda'], env());
    expect(r.code).toBe(1);
    const lines = oneLine(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^lab: the cuda execution provider is not in this onnxruntime-node install: .*ONNXRUNTIME_NODE_INSTALL=cuda12.*--device webgpu \/ cpu$/);
  }, 120_000);

  it('lab verify --device cuda fails the same way', async () => {
    const r = await lab(['verify', '--model', 'synth-llama-tiny', '--parallel', 'tp=2', '--prompt-ids', '1,2,3', '--max-new-tokens', '2', '--device', 'cuda'], env());
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)[0]).toMatch(/cuda execution provider is not in this onnxruntime-node install/);
  }, 120_000);
});

describe('--devices', () => {
  it('is refused with the CPU provider', async () => {
    const r = await lab(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2', '--devices', '0,1'], env());
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)[0]).toMatch(/--devices needs --device webgpu or cuda/);
  });
  it('must be GPU ids', async () => {
    const r = await lab(['generate', '--model', 'synth-llama-tiny', '--prompt-ids', '1,2', '--device', 'webgpu', '--devices', '0,a'], env());
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)[0]).toMatch(/--devices must be comma-separated GPU ids/);
  });
});
