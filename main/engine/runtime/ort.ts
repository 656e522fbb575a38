/**
 * onnxruntime-node sessions for one rank: the execution provider is a
 * parameter (cpu, webgpu, cuda), threads are the rank's share of the cores.
 *
 * GPU sessions keep the CPU provider as fallback: onnxruntime places the few
 * nodes a GPU provider lacks on the CPU (measured on WebGPU with our graphs:
 * only the int64 masking ops of the vocab-parallel embedding — GreaterOrEqual,
 * Less, Sub, Where — everything else, GroupQueryAttention included, runs on
 * the GPU). Errors from a GPU provider are rethrown as DeviceError with one
 * line that says what to do (see providers.ts).
 */
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DeviceKind } from '../types';
import { explainDeviceError, ortBinDir, providerLibrary } from './providers';
import { createSyncCpuSession } from './ort-sync';

export interface SessionConfig {
  device: DeviceKind;
  /** intra-op threads of this rank */
  threads: number;
  /** spin-wait between ops: good when every rank has its own core, wasteful when ranks outnumber cores */
  spin: boolean;
  /** GPU index for CUDA; WebGPU in onnxruntime-node 1.30 cannot choose an adapter and ignores it */
  deviceId?: number;
  /**
   * WebGPU only: outputs that stay on the GPU ('gpu-buffer') so the next run
   * can take them as inputs without a round trip (the KV cache). Their `.data`
   * cannot be read — and in 1.30 `getData()` on such a tensor aborted the
   * process here — so never list an output the host reads (logits, stream).
   */
  deviceOutputs?: string[];
}

export function sessionOptions(c: SessionConfig): ort.InferenceSession.SessionOptions {
  const providers: ort.InferenceSession.ExecutionProviderConfig[] =
    c.device === 'cpu' ? ['cpu'] : c.device === 'cuda' ? [{ name: 'cuda', deviceId: c.deviceId ?? 0 }, 'cpu'] : [{ name: 'webgpu' }, 'cpu'];
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: providers,
    intraOpNumThreads: c.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    // onnxruntime turns memory patterns off itself for WebGPU (with an info line)
    enableMemPattern: c.device !== 'webgpu',
    extra: { session: { 'intra_op.allow_spinning': c.spin ? '1' : '0', 'inter_op.allow_spinning': '0' } },
  };
  if (c.device !== 'cpu') {
    // Errors only: the expected CPU fallback of shape / int64 ops would print a
    // warning per session; real failures (device lost, OOM) are errors.
    o.logSeverityLevel = 3;
  }
  if (c.device === 'webgpu' && c.deviceOutputs && c.deviceOutputs.length > 0) {
    o.preferredOutputLocation = Object.fromEntries(c.deviceOutputs.map((n) => [n, 'gpu-buffer' as const]));
  }
  return o;
}

/** Turn a provider failure into a DeviceError that says what to do; anything else passes through. */
export function deviceFailure(c: SessionConfig, e: unknown): unknown {
  if (c.device === 'cpu') return e;
  const msg = e instanceof Error ? e.message : String(e);
  const lib = providerLibrary(c.device);
  let present = false;
  try {
    present = lib !== null && existsSync(path.join(ortBinDir(), lib));
  } catch {
    present = false;
  }
  return explainDeviceError(c.device, msg, { cudaLibraryPresent: present, deviceId: c.deviceId }) ?? e;
}

export async function createSession(bytes: Uint8Array, c: SessionConfig): Promise<ort.InferenceSession> {
  let s: ort.InferenceSession;
  try {
    const sync = c.device === 'cpu' && process.env.PARALAB_ORT_ASYNC !== '1' ? createSyncCpuSession(bytes, sessionOptions(c)) : null;
    s = sync ?? (await ort.InferenceSession.create(bytes, sessionOptions(c)));
  } catch (e) {
    throw deviceFailure(c, e);
  }
  if (c.device !== 'cpu') {
    // Out-of-memory and device-lost surface in run(): explain those too.
    const run = s.run.bind(s) as (...a: unknown[]) => Promise<ort.InferenceSession.ReturnType>;
    (s as { run: unknown }).run = async (...a: unknown[]) => {
      try {
        return await run(...a);
      } catch (e) {
        throw deviceFailure(c, e);
      }
    };
  }
  return s;
}

export { ort };
