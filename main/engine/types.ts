/**
 * The engine's own plain-data types that its clients (the Lab API, the CLI,
 * the web host) also speak. They live here, at the bottom of the engine, so
 * the engine never imports upwards; `main/lab/contract.ts` re-exports them.
 * Types only: structured-clone-safe, no Node imports (the renderer's
 * compiler reads this file through the contract).
 */

/** Where a rank computes. */
export type DeviceKind = 'cpu' | 'webgpu' | 'cuda';

/** How the sampler picks the next token (sample/sampler.ts; greedy breaks ties by the lowest id). */
export interface SamplingParams {
  /** argmax; same as temperature 0 */
  greedy?: boolean;
  /** default 1; 0 means greedy */
  temperature?: number;
  /** 0 or absent: no top-k */
  topK?: number;
  /** in (0, 1]; 1 or absent: no top-p */
  topP?: number;
  /** 1 or absent: no penalty; must be > 0 */
  repetitionPenalty?: number;
  /** the request's seed (per-sequence seeds are derived from it) */
  seed?: number;
}

export type ModelSource = 'preset' | 'folder' | 'hf-cache';

/** One line of the model catalog (model/catalog.ts). */
export interface ModelSummary {
  /** preset id (`synth-llama-tiny`) or absolute folder path */
  id: string;
  name: string;
  source: ModelSource;
  /** folder on disk; null for a preset not yet written to the cache */
  path: string | null;
  family: string;
  hfArchitecture: string;
  params: number;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  vocabSize: number;
  experts: number;
  topK: number;
  dtype: string;
  /** bytes of weights on disk (or that the preset will write) */
  sizeBytes: number;
  /** false when the lab can list it but not yet run it (e.g. MoE before EP) */
  runnable: boolean;
  /** why it is not runnable, or a problem found while reading it */
  note: string | null;
}
