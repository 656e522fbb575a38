/** Model summaries and a fake LabApi for renderer tests (no engine, no socket). */
import type { LabApi, ListModelsRequest, ModelSummary } from '../../main/lab/contract';

const base: ModelSummary = {
  id: 'synth-llama-tiny',
  name: 'synth-llama-tiny',
  source: 'preset',
  path: null,
  family: 'llama',
  hfArchitecture: 'LlamaForCausalLM',
  params: 281_664,
  layers: 4,
  hidden: 64,
  heads: 8,
  kvHeads: 4,
  vocabSize: 512,
  experts: 0,
  topK: 0,
  dtype: 'float32',
  sizeBytes: 1_126_656,
  runnable: true,
  note: null,
};

export const MODELS: ModelSummary[] = [
  base,
  { ...base, id: 'synth-moe-tiny', name: 'synth-moe-tiny', family: 'mixtral', hfArchitecture: 'MixtralForCausalLM', params: 520_000, experts: 8, topK: 2, runnable: false, note: 'MoE runs once expert parallelism lands' },
  { ...base, id: 'synth-llama-small', name: 'synth-llama-small', params: 155_300_000, layers: 8, hidden: 1024, heads: 16, kvHeads: 4, vocabSize: 32000, sizeBytes: 621_200_000 },
];

export function fakeLab(models: ModelSummary[] = MODELS) {
  const requests: ListModelsRequest[] = [];
  const lab: LabApi = {
    info: async () => ({ apiVersion: 1, version: 'test', platform: 'linux-x64', cpus: 2, memoryBytes: 24 * 2 ** 30, devices: ['cpu', 'webgpu'], dataPlane: { transport: 'unix', reason: 'the native addon is not built' } }),
    listModels: async (req) => {
      requests.push(req);
      const extra = (req.paths ?? []).map((p): ModelSummary => ({ ...base, id: p, name: p.split('/').pop() ?? p, source: 'folder', path: p }));
      return [...models, ...extra];
    },
    generate: async () => {
      throw new Error('not in this test');
    },
    ...unavailableMethods(),
    onEvent: () => () => {},
  };
  return { lab, requests };
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
