/**
 * onnxruntime-node sessions for one rank: the execution provider is a
 * parameter (cpu now; webgpu / cuda where the provider exists), threads are
 * the rank's share of the cores.
 */
import * as ort from 'onnxruntime-node';

export type DeviceKind = 'cpu' | 'webgpu' | 'cuda';

export interface SessionConfig {
  device: DeviceKind;
  /** intra-op threads of this rank */
  threads: number;
  /** spin-wait between ops: good when every rank has its own core, wasteful when ranks outnumber cores */
  spin: boolean;
  deviceId?: number;
}

export function sessionOptions(c: SessionConfig): ort.InferenceSession.SessionOptions {
  const providers: ort.InferenceSession.ExecutionProviderConfig[] =
    c.device === 'cpu' ? ['cpu'] : c.device === 'cuda' ? [{ name: 'cuda', deviceId: c.deviceId ?? 0 }, 'cpu'] : ['webgpu', 'cpu'];
  return {
    executionProviders: providers,
    intraOpNumThreads: c.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    enableMemPattern: true,
    extra: { session: { 'intra_op.allow_spinning': c.spin ? '1' : '0', 'inter_op.allow_spinning': '0' } },
  };
}

export async function createSession(bytes: Uint8Array, c: SessionConfig): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, sessionOptions(c));
}

export { ort };
