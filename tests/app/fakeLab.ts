/** A LabApi made of fixed data, for testing the doors (IPC, web host) without the engine. */
import type { LabApi, LabEvent, ModelSummary } from '../../main/lab/contract';

export const FAKE_MODEL: ModelSummary = {
  id: 'synth-llama-tiny',
  name: 'synth-llama-tiny',
  source: 'preset',
  path: null,
  family: 'llama',
  hfArchitecture: 'LlamaForCausalLM',
  params: 280_000,
  layers: 4,
  hidden: 64,
  heads: 8,
  kvHeads: 4,
  vocabSize: 512,
  experts: 0,
  topK: 0,
  dtype: 'float32',
  sizeBytes: 1_120_000,
  runnable: true,
  note: null,
};

export interface FakeLab extends LabApi {
  emit(e: LabEvent): void;
  listenerCount(): number;
  calls: { method: string; args: unknown[] }[];
}

export function fakeLab(): FakeLab {
  const listeners = new Set<(e: LabEvent) => void>();
  const calls: FakeLab['calls'] = [];
  return {
    calls,
    async info() {
      calls.push({ method: 'info', args: [] });
      return { apiVersion: 1, version: 'test', platform: 'linux-x64', cpus: 2, memoryBytes: 1 << 30, devices: ['cpu'], dataPlane: { transport: 'shm', reason: 'test' } };
    },
    async listModels(req) {
      calls.push({ method: 'listModels', args: [req] });
      return (req?.paths ?? []).length ? [FAKE_MODEL, { ...FAKE_MODEL, id: req.paths![0], source: 'folder', path: req.paths![0] }] : [FAKE_MODEL];
    },
    async generate(req) {
      calls.push({ method: 'generate', args: [req] });
      throw Object.assign(new Error(`unknown model '${req.model}'`), { code: 'unknown-preset' });
    },
    ...unavailableMethods(),
    onEvent(l) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
    emit: (e) => listeners.forEach((l) => l(e)),
    listenerCount: () => listeners.size,
  };
}

/** The methods a test does not exercise: each rejects with a clear error. */
function unavailableMethods() {
  const no = (m: string) => async (): Promise<never> => {
    throw new Error(`${m} is not faked in this test`);
  };
  return {
    checkSpec: no('checkSpec'),
    startBench: no('startBench'),
    cancelBench: no('cancelBench'),
    listJobs: no('listJobs'),
    listRuns: no('listRuns'),
    getRun: no('getRun'),
    getTrace: no('getTrace'),
    deleteRun: no('deleteRun'),
    exportReport: no('exportReport'),
    claims: no('claims'),
    chat: no('chat'),
    cancel: no('cancel'),
  };
}
