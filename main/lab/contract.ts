/**
 * The Lab API: the one typed contract between the UI and the lab.
 *
 * `main/lab` implements it (pure Node); Electron's preload carries it over IPC
 * as `window.paralab`, and the web host carries it over a WebSocket. The
 * renderer only ever sees this interface and cannot tell which door it uses.
 * Everything here is structured-clone-safe plain data: no classes, no functions
 * in payloads, no Node types. This file must not import anything from Node;
 * the types the engine owns (sampling, model summaries) come from
 * `main/engine/types.ts` and are re-exported here.
 *
 * Long (~350 lines) on purpose: the whole API a door carries, in one file,
 * so a reader (and the renderer's compiler) sees every request and event.
 */

export const LAB_API_VERSION = 1;

export type { DeviceKind, ModelSource, ModelSummary, SamplingParams } from '../engine/types';
import type { ModelSummary, SamplingParams } from '../engine/types';

export interface ListModelsRequest {
  /** extra folders to look in, besides PARALAB_MODELS and the Hugging Face cache */
  paths?: string[];
}

export interface GenerateRequest {
  /** chosen by the caller to match token events and to cancel() the run; a random one when absent */
  requestId?: string;
  model: string;
  parallel: string;
  device?: 'cpu' | 'webgpu' | 'cuda';
  /** GPU ids for the ranks, in rank order, repeating (default: round-robin over the GPUs found) */
  devices?: number[];
  prompt?: string;
  promptIds?: number[];
  /** skip the chat template for chat models */
  raw?: boolean;
  maxNewTokens: number;
  sampling?: SamplingParams;
  stop?: string[];
  ignoreEos?: boolean;
  threadsPerRank?: number;
  /** ms one step (or one collective in it) may take before the run counts as hung; default: scaled from the steps seen */
  timeoutMs?: number;
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
  /** ms from the start of the request to each generated token */
  token_ms?: number[];
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
  /** one generated token; `ms` since the request started, `ranks` that worked on the step */
  | { kind: 'token'; requestId: string; tokenId: number; text: string; ms?: number; ranks?: number[] }
  | { kind: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  /** a benchmark job changed state or wrote a run record */
  | { kind: 'job'; job: BenchJob };

// ---------------------------------------------------------------------------
// Parallel specs, benchmarks, run records, reports, chat
// ---------------------------------------------------------------------------

export type DeviceKindName = 'cpu' | 'webgpu' | 'cuda';
export type Lang = 'zh-CN' | 'en';

export interface CheckSpecRequest {
  model: string;
  parallel: string;
}

/** The engine's verdict on a spec for a model, and the mesh it would build. */
export interface SpecCheck {
  ok: boolean;
  /** the engine's own error message when !ok (says which number must divide which) */
  message: string | null;
  /** canonical spec string */
  spec: string;
  world: number;
  degrees: { dp: number; pp: number; tp: number; sp: number; ep: number };
  spImpl: string | null;
  /** documented fallbacks that apply (e.g. kv heads replicated) */
  notes: string[];
  ranks: { rank: number; coord: { dp: number; pp: number; sp: number; tp: number }; layers: [number, number]; groups: Partial<Record<'tp' | 'pp' | 'dp' | 'sp' | 'ep', number[]>> }[];
}

export type WorkloadKind = 'prefill' | 'decode' | 'serving';

export interface BenchRequest {
  model: string;
  /** each spec runs on the same seeded workload; `single` is added when missing */
  specs: string[];
  workload: WorkloadKind;
  promptLen?: number;
  outputLen?: number;
  batch?: number;
  /** serving: number of requests and their Poisson arrival rate (requests / s; 0 or absent = all at once) */
  requests?: number;
  rate?: number;
  threadsPerRank?: number;
  device?: DeviceKindName;
  seed?: number;
  /** ms one step may take before the run counts as hung (see GenerateRequest.timeoutMs) */
  timeoutMs?: number;
  /** also run `verify` for each spec and store the result as the record's correctness */
  verify?: boolean;
  /** prefill / decode: batches measured back to back (default 3) */
  reps?: number;
  /** serving: most sequences in the running batch */
  maxBatch?: number;
  /** serving: goodput counts requests meeting every SLO given (ms) */
  slo?: { ttftMs?: number; tpotMs?: number };
}

export interface BenchJob {
  jobId: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  specs: string[];
  /** specs finished so far */
  done: number;
  /** run ids written so far, in spec order */
  runIds: string[];
  message: string;
  error: string | null;
}

/** A line of the runs list (the full record comes from getRun). */
export interface RunSummary {
  id: string;
  created: string;
  label: string;
  model: string;
  spec: string;
  world: number;
  workload: WorkloadKind;
  device: string;
  output_tok_s: number;
  prefill_tok_s: number;
  ttft_p50_ms: number;
  tpot_p50_ms: number;
  correctness: 'pass' | 'fail' | 'unchecked';
}

export interface Stat {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

/**
 * `run.json` (schema paralab.run/1, see DESIGN.md and the JSON Schema in the
 * repo). The fields the UI reads are typed; a record may carry more.
 */
export interface RunRecord {
  schema: 'paralab.run/1';
  id: string;
  created: string;
  label: string;
  model: { id: string; arch: string; params: number; layers: number; hidden: number; heads: number; kv_heads: number; experts: number; top_k: number; dtype: string; [k: string]: unknown };
  parallel: { spec: string; world: number; dp: number; pp: number; tp: number; sp: number; ep: number; [k: string]: unknown };
  device: { kind: string; threads_per_rank: number; host_cpu: string; [k: string]: unknown };
  workload: { kind: WorkloadKind; [k: string]: unknown };
  metrics: {
    ttft_ms: Stat;
    tpot_ms: Stat;
    itl_ms?: Stat;
    e2el_ms?: Stat;
    output_tok_s: number;
    prefill_tok_s: number;
    request_s?: number;
    [k: string]: unknown;
  };
  ranks: {
    rank: number;
    memory?: { weights_bytes: number; kv_cache_bytes: number; activation_peak_bytes: number; rss_peak_bytes: number };
    time?: { compute_ms: number; comm_ms: number; wait_ms?: number; bubble_ms: number };
    [k: string]: unknown;
  }[];
  comm: { rank: number; op: string; count: number; bytes_sent: number; bytes_recv: number; expected_count: number; expected_bytes_sent: number; [k: string]: unknown }[];
  correctness: { checked: boolean; tokens_equal?: boolean; max_abs_logit_diff?: number; note: string; [k: string]: unknown };
  /** MoE runs: tokens routed per [layer][expert], and max ÷ mean per layer */
  expert_load?: { tokens: number[][]; balancedness: number[]; [k: string]: unknown };
  [k: string]: unknown;
}

/** Chrome trace-event format (what trace.json holds). */
export interface TraceEvent {
  name: string;
  cat?: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

export type ReportFormat = 'html' | 'pdf' | 'md' | 'csv' | 'json';

export interface ReportRequest {
  runIds: string[];
  format: ReportFormat;
  lang?: Lang;
}

/** A report as data: the door saves it (Electron: save dialog; browser: download). */
export interface ReportFile {
  fileName: string;
  mime: string;
  encoding: 'utf8' | 'base64';
  data: string;
}

export type ClaimVerdict = 'borne_out' | 'not_borne_out' | 'not_measured';

export interface ClaimRow {
  strategy: 'DP' | 'PP' | 'TP' | 'SP' | 'EP';
  aspect: 'memory' | 'communication' | 'throughput' | 'latency';
  claim: { en: string; zh: string };
  evidence: { en: string; zh: string };
  verdict: ClaimVerdict;
  runIds: string[];
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A chat turn over a warm engine for (model, parallel, device, threads); switching any of them restarts it. */
export interface ChatRequest {
  /** chosen by the caller so token events can be matched before the call returns; cancel() takes it */
  requestId: string;
  model: string;
  parallel: string;
  device?: DeviceKindName;
  threadsPerRank?: number;
  messages: ChatMessage[];
  maxNewTokens: number;
  sampling?: SamplingParams;
  stop?: string[];
}

export interface LabInfo {
  apiVersion: number;
  version: string;
  platform: string;
  cpus: number;
  memoryBytes: number;
  /** execution providers this build of onnxruntime-node can create */
  devices: string[];
  /** how ranks on this machine talk ('auto'): shared memory, else Unix sockets (TCP on Windows), and why */
  dataPlane: { transport: 'shm' | 'unix' | 'tcp'; reason: string };
}

/** The API. Every method returns a promise; failures reject with a LabError-shaped message. */
export interface LabApi {
  info(): Promise<LabInfo>;
  listModels(req: ListModelsRequest): Promise<ModelSummary[]>;
  generate(req: GenerateRequest): Promise<GenerateResult>;
  /** validate a spec against a model with the engine's own rules; never throws for a bad spec (ok: false) */
  checkSpec(req: CheckSpecRequest): Promise<SpecCheck>;
  /** start a benchmark job in the background; progress and results arrive as 'progress' / 'job' events */
  startBench(req: BenchRequest): Promise<BenchJob>;
  cancelBench(jobId: string): Promise<void>;
  listJobs(): Promise<BenchJob[]>;
  listRuns(): Promise<RunSummary[]>;
  getRun(id: string): Promise<RunRecord>;
  getTrace(id: string): Promise<TraceEvent[]>;
  deleteRun(id: string): Promise<void>;
  exportReport(req: ReportRequest): Promise<ReportFile>;
  claims(runIds: string[]): Promise<ClaimRow[]>;
  /** one chat turn; tokens stream as 'token' events with req.requestId */
  chat(req: ChatRequest): Promise<GenerateResult>;
  /** stop a running chat turn or generation (its promise resolves with finish_reason 'stop') */
  cancel(requestId: string): Promise<void>;
  /** subscribe to events; returns an unsubscribe function */
  onEvent(listener: (e: LabEvent) => void): () => void;
}

/** Method names a door must carry (everything except the local onEvent). */
export const LAB_METHODS = [
  'info',
  'listModels',
  'generate',
  'checkSpec',
  'startBench',
  'cancelBench',
  'listJobs',
  'listRuns',
  'getRun',
  'getTrace',
  'deleteRun',
  'exportReport',
  'claims',
  'chat',
  'cancel',
] as const;
export type LabMethod = (typeof LAB_METHODS)[number];

/** The wire shape of an error crossing a door. */
export interface LabErrorPayload {
  code: string;
  message: string;
}

/**
 * Error codes a door may report; engine errors may carry their own `code`
 * string (a model's, e.g. 'context-too-long'; a spec's, e.g. 'world-too-large').
 * 'rank_failed': a rank process died, hung or broke the protocol (the message
 * names the rank and the phase); the next request starts fresh ranks.
 */
export type LabErrorCode = 'bad_request' | 'unknown_method' | 'unauthorized' | 'not_found' | 'rank_failed' | 'internal' | (string & {});

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
