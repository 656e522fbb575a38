/**
 * The Lab: the one implementation of LabApi (pure Node, no electron).
 *
 * It is a thin façade: model listing comes from the engine's catalog, a
 * generation from the engine's generate(); the lab adds host facts (info),
 * request ids and the fan-out of events to every subscriber (the window over
 * IPC, each WebSocket client of the web host). Engine functions come in as
 * deps so the doors can be tested with fakes.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { autoTransport } from '../engine/comm/world';
import { listModels as catalogListModels } from '../engine/model/catalog';
import { LAB_API_VERSION, type GenerateRequest, type GenerateResult, type LabApi, type LabEvent, type LabInfo } from './contract';
import type { ListModelsRequest, ModelSummary } from './contract';
import { chatMethods } from './chat';
import { createRunsApi } from './runs';
import { withValidation } from './validate';

export interface LabDeps {
  listModels?: (req: ListModelsRequest) => Promise<ModelSummary[]>;
  generate?: (req: GenerateRequest, o: { onEvent?: (e: LabEvent) => void; requestId?: string; signal?: AbortSignal }) => Promise<GenerateResult>;
  /** execution providers usable here; defaults to asking onnxruntime-node */
  devices?: () => Promise<string[]>;
  /** app version (Electron: app.getVersion()); defaults to npm's package version */
  version?: string;
  /** run folders (default: PARALAB_RUNS or ~/.local/share/paralab/runs) */
  runsDir?: string;
  /** HTML report → PDF (Electron: webContents.printToPDF); defaults to headless Chromium */
  printPdf?: (html: string) => Promise<Buffer>;
}

export function createLab(deps: LabDeps = {}): LabApi {
  const listeners = new Set<(e: LabEvent) => void>();
  const emit = (e: LabEvent) => {
    for (const l of listeners) {
      try {
        l(e);
      } catch {
        // a broken subscriber must not break the run or the other subscribers
      }
    }
  };
  let devices: Promise<string[]> | null = null;
  /** requestId → the abort of a running generate (cancel() takes either kind of request id) */
  const generating = new Map<string, AbortController>();
  const chat = chatMethods(emit);

  return withValidation({
    async info(): Promise<LabInfo> {
      devices ??= (deps.devices ?? detectDevices)();
      return {
        apiVersion: LAB_API_VERSION,
        version: deps.version ?? process.env['npm_package_version'] ?? 'dev',
        platform: `${process.platform}-${process.arch}`,
        cpus: os.availableParallelism(),
        memoryBytes: os.totalmem(),
        devices: await devices,
        dataPlane: autoTransport(),
      };
    },
    listModels: (req) => (deps.listModels ?? catalogListModels)({ paths: req?.paths }),
    async generate(req) {
      if (req?.requestId !== undefined && (typeof req.requestId !== 'string' || !req.requestId)) {
        throw Object.assign(new Error('requestId must be a non-empty string (or left out)'), { code: 'bad_request' });
      }
      const requestId = req.requestId ?? randomUUID();
      if (generating.has(requestId)) throw Object.assign(new Error(`a generate with requestId '${requestId}' is already running; use a unique id`), { code: 'bad_request' });
      const controller = new AbortController();
      generating.set(requestId, controller);
      try {
        // the engine (rank processes, onnxruntime) loads on first use, not when the app starts
        const run = deps.generate ?? (await import('./generate')).generate;
        return await run(req, { onEvent: emit, requestId, signal: controller.signal });
      } finally {
        generating.delete(requestId);
      }
    },
    // Filled in by main/lab/runs.ts (benchmarks, run records, reports, claims)
    // and main/lab/chat.ts (warm engines for the chat window).
    ...createRunsApi({ emit, runsDir: deps.runsDir, printPdf: deps.printPdf }),
    chat: chat.chat,
    async cancel(requestId) {
      const g = generating.get(requestId);
      if (g) g.abort();
      else await chat.cancel(requestId);
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  });
}

/**
 * 'cpu' always; 'webgpu' / 'cuda' when onnxruntime-node lists the provider and
 * its library is present (bundled, or the CUDA provider .so installed beside
 * the binding). Whether a GPU adapter exists is only known when a session is made.
 */
export async function detectDevices(): Promise<string[]> {
  const found = ['cpu'];
  try {
    const require = createRequire(__filename);
    const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
    const backends = ort.listSupportedBackends();
    const dist = dirname(require.resolve('onnxruntime-node'));
    const bindingDir = join(dist, '..', 'bin', 'napi-v6', process.platform, process.arch);
    for (const b of backends) {
      if (b.name === 'webgpu' && b.bundled) found.push('webgpu');
      if (b.name === 'cuda' && (b.bundled || existsSync(join(bindingDir, 'libonnxruntime_providers_cuda.so')))) found.push('cuda');
    }
  } catch {
    // onnxruntime-node missing or not loadable here: the CPU is still listed so the UI can explain
  }
  return found;
}
