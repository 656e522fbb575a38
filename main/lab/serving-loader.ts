/**
 * The serving workload (Poisson arrivals, continuous batching) lives in
 * main/lab/serving.ts, built beside the bench. This loader is the one place
 * the bench reaches it, so `--workload serving` fails with one clear line
 * where that module is not part of the build.
 */
import { createRequire } from 'node:module';
import type { Engine } from '../engine/engine';
import type { RequestTimeline, ServingMetrics } from './metrics';

export interface ServingOptions {
  requests: number;
  /** requests / s; 0 = all at t0 */
  rate: number;
  promptLen: number;
  outputLen: number;
  seed: number;
  maxBatch?: number;
  slo?: { ttftMs?: number; tpotMs?: number };
  onProgress?: (done: number, total: number) => void;
}

/** How the scheduler ran the workload (optional: recorded when the module gives it). */
export interface ServingDetail {
  mode?: string;
  notes?: string[];
  steps?: { replica: number; kind: string; startMs: number; endMs: number; batch: number; S: number }[];
}

export interface ServingModule {
  runServingWorkload(engine: Engine, o: ServingOptions): Promise<{ metrics: ServingMetrics; requests: RequestTimeline[]; detail?: ServingDetail }>;
}

export async function loadServing(): Promise<ServingModule> {
  try {
    const req = createRequire(__filename);
    const mod = req('./serving') as Partial<ServingModule>;
    if (typeof mod.runServingWorkload !== 'function') throw new Error('main/lab/serving.ts has no runServingWorkload');
    return mod as ServingModule;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'MODULE_NOT_FOUND') throw Object.assign(new Error('--workload serving is not available in this build (continuous batching has not landed); use prefill or decode'), { code: 'unavailable' });
    throw e;
  }
}
