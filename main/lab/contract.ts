/**
 * The Lab API: the one typed contract between the UI and the lab.
 *
 * `main/lab` implements it (pure Node); Electron's preload carries it over IPC
 * as `window.paralab`, and the web host carries it over a WebSocket. The
 * renderer only ever sees this interface and cannot tell which door it uses.
 * Everything here is structured-clone-safe plain data: no classes, no functions
 * in payloads, no Node types. This file must not import anything from Node.
 */

export const LAB_API_VERSION = 1;

export type ModelSource = 'preset' | 'folder' | 'hf-cache';

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

export interface ListModelsRequest {
  /** extra folders to look in, besides PARALAB_MODELS and the Hugging Face cache */
  paths?: string[];
}

export interface SamplingParams {
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
}

export interface GenerateRequest {
  model: string;
  parallel: string;
  device?: 'cpu' | 'webgpu' | 'cuda';
  prompt?: string;
  promptIds?: number[];
  /** skip the chat template for chat models */
  raw?: boolean;
  maxNewTokens: number;
  sampling?: SamplingParams;
  stop?: string[];
  ignoreEos?: boolean;
  threadsPerRank?: number;
}

export interface GenerateMetrics {
  prompt_tokens: number;
  output_tokens: number;
  load_ms: number;
  ttft_ms: number;
  tpot_ms: number;
  e2el_ms: number;
  prefill_tok_s: number;
  output_tok_s: number;
}

export interface RankSummary {
  rank: number;
  pid: number;
  device: string;
  threads: number;
  layers: [number, number];
  weight_bytes: number;
  rss_peak_bytes: number;
}

export interface GenerateResult {
  token_ids: number[];
  text: string;
  finish_reason: 'length' | 'eos' | 'stop';
  prompt_ids: number[];
  metrics: GenerateMetrics;
  ranks: RankSummary[];
  comm: CommOpSummary[];
}

export interface CommOpSummary {
  op: string;
  count: number;
  bytes: number;
  ms: number;
}

/** Events pushed from the lab to the UI. */
export type LabEvent =
  | { kind: 'progress'; task: string; done: number; total: number; message: string }
  | { kind: 'token'; requestId: string; tokenId: number; text: string }
  | { kind: 'log'; level: 'info' | 'warn' | 'error'; message: string };

export interface LabInfo {
  apiVersion: number;
  version: string;
  platform: string;
  cpus: number;
  memoryBytes: number;
  /** execution providers this build of onnxruntime-node can create */
  devices: string[];
}

/** The API. Every method returns a promise; failures reject with a LabError-shaped message. */
export interface LabApi {
  info(): Promise<LabInfo>;
  listModels(req: ListModelsRequest): Promise<ModelSummary[]>;
  generate(req: GenerateRequest): Promise<GenerateResult>;
  /** subscribe to events; returns an unsubscribe function */
  onEvent(listener: (e: LabEvent) => void): () => void;
}

/** Method names a door must carry (everything except the local onEvent). */
export const LAB_METHODS = ['info', 'listModels', 'generate'] as const;
export type LabMethod = (typeof LAB_METHODS)[number];

/** The wire shape of an error crossing a door. */
export interface LabErrorPayload {
  code: string;
  message: string;
}

/** Error codes a door may report; engine errors may carry their own `code` string. */
export type LabErrorCode = 'bad_request' | 'unknown_method' | 'unauthorized' | 'internal' | (string & {});

/** Normalise anything thrown into the wire shape: a string `code` property is kept, else 'internal'. */
export function toLabErrorPayload(err: unknown): LabErrorPayload {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' && e.code ? e.code : 'internal';
  const message = typeof e.message === 'string' && e.message ? e.message : String(err);
  return { code, message };
}

/** Wire envelopes of the web host's WebSocket (`/api`); Electron IPC carries the same calls per channel. */
export type WireRequest = { v: typeof LAB_API_VERSION; id: number; method: LabMethod; params: unknown[] };
export type WireMessage =
  | { v: typeof LAB_API_VERSION; id: number; ok: true; result: unknown }
  | { v: typeof LAB_API_VERSION; id: number; ok: false; error: LabErrorPayload }
  | { v: typeof LAB_API_VERSION; event: LabEvent };
