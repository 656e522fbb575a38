/**
 * `--device webgpu` for real: every plan run on onnxruntime-node's WebGPU
 * provider reproduces the CPU `single` run (greedy tokens identical, max
 * |Δlogit| within the fp32 tolerance), KV tensors can stay on the GPU, and
 * device failures end the run cleanly with a message that says what to do.
 *
 * Without a GPU this needs Mesa ≥ 25's lavapipe (scripts/lavapipe.sh; .ci/run
 * installs it and sets PARALAB_REQUIRE_WEBGPU=1 so a missing adapter fails
 * instead of skipping). Lavapipe is 20–200× slower than the CPU provider:
 * tiny model, few tokens, generous timeouts, no timing assertions.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { verify } from '../../../main/engine/host/verify';
import { Engine } from '../../../main/engine/host/engine';
import { DeviceError } from '../../../main/engine/runtime/providers';
import { probeProvider } from '../../../main/engine/runtime/probe';
import { createSession, ort } from '../../../main/engine/runtime/ort';
import { GraphBuilder } from '../../../main/engine/graph/onnx';
import { qwen2Gqa16, useTempCache, writeVariant } from '../../support/model-cache';

const probe = await probeProvider('webgpu', { timeoutMs: 120_000 });
const required = process.env.PARALAB_REQUIRE_WEBGPU === '1';
const skipReason = probe.ok ? '' : ` — SKIPPED: no WebGPU adapter here (${probe.error}); install lavapipe with scripts/lavapipe.sh`;
if (!probe.ok && !required) console.warn(`webgpu tests skipped: ${probe.error}`);

const T = 600_000;
const prompt = [1, 2, 3, 200, 17, 45];
const cache = useTempCache('webgpu');
let gqaModel: string;
beforeAll(async () => {
  // head_dim 16 takes the fused GroupQueryAttention kernel (the tiny preset's head_dim 8 takes the standard-op one).
  gqaModel = await writeVariant(cache.dir, 'qwen2-gqa', 'synth-llama-tiny', qwen2Gqa16, { seed: 11 });
});

describe('WebGPU adapter', () => {
  it.runIf(required)('is present where CI requires it (.ci/run installs lavapipe)', () => {
    expect(probe.error).toBeNull();
    expect(probe.ok).toBe(true);
  });
});

describe.skipIf(!probe.ok)(`--device webgpu against the CPU single run${skipReason}`, () => {
  for (const spec of ['single', 'dp=2', 'tp=2', 'pp=2']) {
    it(
      `${spec} on synth-llama-tiny`,
      async () => {
        const r = await verify({ model: 'synth-llama-tiny', parallel: spec, device: 'webgpu', promptIds: prompt, maxNewTokens: 4, threadsPerRank: 1 });
        console.log(`webgpu ${spec}: tokens ${r.tokens.join(',')} (cpu ${r.reference_tokens.join(',')}), max |Δlogit| ${r.max_abs_logit_diff.toExponential(2)}`);
        expect(r.device).toBe('webgpu');
        expect(r.reference_device).toBe('cpu');
        expect(r.tokens).toHaveLength(4);
        expect(r.tokens).toEqual(r.reference_tokens);
        expect(r.max_abs_logit_diff).toBeLessThanOrEqual(1e-3);
        expect(r.passed).toBe(true);
      },
      T,
    );
  }

  it(
    'tp=2 with the fused GroupQueryAttention kernel (head_dim 16)',
    async () => {
      const r = await verify({ model: gqaModel, parallel: 'tp=2', device: 'webgpu', promptIds: prompt, maxNewTokens: 4, threadsPerRank: 1 });
      console.log(`webgpu gqa tp=2: max |Δlogit| ${r.max_abs_logit_diff.toExponential(2)}`);
      expect(r.tokens).toEqual(r.reference_tokens);
      expect(r.passed).toBe(true);
    },
    T,
  );

  it(
    'the engine records which device id each rank uses and that they share the one adapter',
    async () => {
      const engine = await Engine.start({ model: 'synth-llama-tiny', parallel: 'tp=2', device: 'webgpu', threadsPerRank: 1 });
      try {
        expect(engine.device).toBe('webgpu');
        expect(engine.placement.deviceIds).toEqual([0, 0]);
        expect(engine.placement.shared).toBe(true);
        expect(engine.notes.join(' ')).toMatch(/share|sharing/);
        const { outputs } = await engine.generate([prompt], { maxNewTokens: 2, ignoreEos: true });
        expect(outputs[0].tokens).toHaveLength(2);
      } finally {
        await engine.close();
      }
    },
    T,
  );

  it(
    'KV outputs can stay on the GPU (preferredOutputLocation gpu-buffer) and feed the next run',
    async () => {
      // y = x + past; present = y. Run twice, feeding the GPU-resident present back as past.
      const g = new GraphBuilder('kv-on-device');
      const x = g.input('x', 'float32', [4]);
      const past = g.input('past', 'float32', [4]);
      const y = g.op('Add', [x, past]);
      g.node('Identity', [y], ['present']);
      g.node('Identity', [y], ['y']);
      g.output('present', 'float32', [4]);
      g.output('y', 'float32', [4]);
      const s = await createSession(g.toBytes(), { device: 'webgpu', threads: 1, spin: false, deviceOutputs: ['present'] });
      try {
        const xin = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]);
        const a = await s.run({ x: xin, past: new ort.Tensor('float32', new Float32Array(4), [4]) });
        expect(a.present.location).toBe('gpu-buffer');
        expect(a.y.location).toBe('cpu');
        const b = await s.run({ x: xin, past: a.present });
        expect(Array.from(b.y.data as Float32Array)).toEqual([2, 4, 6, 8]);
        a.present.dispose();
        b.present.dispose();
      } finally {
        await s.release();
      }
    },
    T,
  );

  it(
    'a tensor beyond the device buffers fails with "out of memory" and what to do; the process lives on',
    async () => {
      const g = new GraphBuilder('too-big');
      const x = g.input('x', 'float32', [1]);
      const shape = g.input('shape', 'int64', [2]);
      g.output(g.op('ReduceMax', [g.op('Expand', [x, shape])], { keepdims: 0 }), 'float32', []);
      const s = await createSession(g.toBytes(), { device: 'webgpu', threads: 1, spin: false });
      const run = (n: number) => s.run({ x: new ort.Tensor('float32', Float32Array.from([2]), [1]), shape: new ort.Tensor('int64', BigInt64Array.from([BigInt(n), BigInt(n)]), [2]) });
      try {
        expect(Array.from(Object.values(await run(64))[0].data as Float32Array)).toEqual([2]);
        // 24000² floats = 2.3 GB: over lavapipe's 2 GiB binding limit, refused before any allocation.
        const err = await run(24_000).then(
          () => null,
          (e: unknown) => e,
        );
        if (err === null) return; // a real GPU with larger limits computes it: nothing to explain
        expect(err).toBeInstanceOf(DeviceError);
        expect((err as DeviceError).kind).toBe('out-of-memory');
        expect((err as DeviceError).message).toMatch(/ran out of memory.*tp \/ pp/);
        expect(Array.from(Object.values(await run(8))[0].data as Float32Array)).toEqual([2]);
      } finally {
        await s.release();
      }
    },
    T,
  );
});

/** Live rank processes forked by this process (their cmdline names rank/main). */
function rankChildren(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('rank')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('device failures end the run cleanly', () => {
  it(
    'no WebGPU adapter (no Vulkan driver): every rank stops, the host gets one actionable line',
    async () => {
      const saved = process.env.VK_ICD_FILENAMES;
      process.env.VK_ICD_FILENAMES = path.join(os.tmpdir(), 'paralab-no-such-icd.json');
      try {
        const err = await Engine.start({ model: 'synth-llama-tiny', parallel: 'tp=2', device: 'webgpu', threadsPerRank: 1 }).then(
          async (e) => {
            await e.close();
            return null;
          },
          (e: unknown) => e as Error,
        );
        expect(err).not.toBeNull();
        expect(err!.message).toMatch(/^rank \d failed in 'load': WebGPU found no GPU adapter: install the Vulkan driver/);
        expect(err!.message).toMatch(/lavapipe/);
      } finally {
        if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
        else process.env.VK_ICD_FILENAMES = saved;
      }
      // The other rank was stopped too, and this (host) process is fine.
      for (let i = 0; i < 50 && rankChildren().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(rankChildren()).toEqual([]);
    },
    T,
  );
});
