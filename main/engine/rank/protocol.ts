/**
 * The control plane between the host and its rank processes: one versioned
 * discriminated union each way, request ids on everything that expects an
 * answer, structured-clone-safe payloads (typed arrays travel as-is with
 * `serialization: 'advanced'`), and a typed reply per request kind
 * (RankReplies). Weights never travel here: a rank reads its own shard from
 * the model files.
 */
import type { DeviceKind, SamplingParams } from '../types';
import type { ShardPlan } from '../parallel/plan';
import type { RankLinks } from '../parallel/mesh';
import type { WorldSetup } from '../comm/world';
import type { LedgerSummary } from '../comm/ledger';
import type { StepStats } from '../runtime/block';

export const PROTOCOL_VERSION = 1;

export interface RankInit {
  rank: number;
  world: number;
  modelDir: string;
  /** preset id or folder, so a rank on another machine can find the model itself */
  modelId: string;
  plan: ShardPlan;
  device: DeviceKind;
  /** GPU index on this rank's machine (webgpu / cuda; absent on the CPU) */
  deviceId?: number;
  threads: number;
  spin: boolean;
  /** pin this rank to its own cores (when world × threads ≤ cores) */
  pin: boolean;
  /** longest sequence (prompt + output) the rank's RoPE tables and checks allow */
  maxSeq: number;
  /** 'collectives': cut segments only where the plan communicates; 'sublayer': ~2 runs per layer; 'none': one graph */
  cut: 'collectives' | 'sublayer' | 'none';
  /** the rank that samples and answers with tokens (last pipeline stage, tp rank 0) */
  sampler: boolean;
  /** pipeline micro-batches per step */
  micro: number;
  /** the data plane: how to reach the other ranks (null when no rank needs another) */
  dataPlane: WorldSetup | null;
  /** names of this rank's groups in the world, and its pipeline neighbours as ranks of the pp group (Mesh.links) */
  links: RankLinks;
}

export interface SeqSampling {
  params: SamplingParams;
  seed: number;
}

export type HostMsg =
  | { v: 1; type: 'init'; id: number; init: RankInit }
  /**
   * ghosts: trailing sequences that only pad the batch (EP lockstep); they are never routed to experts.
   * micro: pipeline micro-batches of this batch's steps (default: the spec's); 1 when the host keeps
   * several batches in flight instead (PP overlap across steps, host/step.ts)
   */
  | { v: 1; type: 'open'; id: number; batch: string; size: number; sampling: SeqSampling[]; ghosts?: number; micro?: number }
  | { v: 1; type: 'step'; id: number; batch: string; S: number; tokens: Int32Array; wantLogits: boolean; trace?: boolean }
  | { v: 1; type: 'close'; id: number; batch: string }
  | { v: 1; type: 'ledger'; id: number; reset: boolean }
  | { v: 1; type: 'shutdown'; id: number }
  /** continuous batching (host/serving.ts, rank/serving-pool.ts): a pool is one running ragged batch; `leave` rows drop out before the step */
  | { v: 1; type: 'serve-open'; id: number; pool: string; micro?: number }
  | { v: 1; type: 'serve-prefill'; id: number; pool: string; leave: number[]; ids: number[]; sampling: SeqSampling[]; S: number; tokens: Int32Array; trace?: boolean }
  | { v: 1; type: 'serve-step'; id: number; pool: string; leave: number[]; tokens: Int32Array; trace?: boolean }
  | { v: 1; type: 'serve-close'; id: number; pool: string };

export type HostMsgType = HostMsg['type'];

/** A host message of one kind, without the envelope (what a caller passes). */
export type RankRequest<K extends HostMsgType = HostMsgType> = K extends HostMsgType ? Omit<Extract<HostMsg, { type: K }>, 'v' | 'id'> : never;

export interface RankReady {
  pid: number;
  weightBytes: number;
  loadMs: number;
  segments: number;
  layers: [number, number];
}

/** One span of a rank's timeline (trace.json): µs since the epoch (performance.timeOrigin-based), so ranks line up. */
export interface RankSpan {
  name: string;
  /** compute: a session run; comm: moving bytes; wait: inside a collective, waiting for a late peer; bubble: idle between pipeline stages */
  cat: 'compute' | 'comm' | 'wait' | 'bubble';
  ts: number;
  dur: number;
}

export interface StepResult {
  /** the step's spans when the host asked for a trace */
  spans?: RankSpan[];
  /** one sampled id per sequence (sampler rank only) */
  tokens: number[] | null;
  /** (B,V) last-position logits when asked (sampler rank only) */
  logits: Float32Array | null;
  computeMs: number;
  commMs: number;
  bubbleMs: number;
  kvBytes: number;
  /** MoE: rows this rank routed per layer × expert in this step (null when nothing was routed) */
  moe?: StepStats | null;
}

/** Whether a serving pool can hold a ragged batch on this rank, and why not. */
export interface PoolOpened {
  ragged: boolean;
  reason: string | null;
}

/** What each request kind answers with. */
export interface RankReplies {
  init: RankReady;
  open: null;
  step: StepResult;
  close: null;
  ledger: LedgerSummary | null;
  shutdown: null;
  'serve-open': PoolOpened;
  'serve-prefill': StepResult;
  'serve-step': StepResult;
  'serve-close': null;
}

export type RankMsg =
  | { v: 1; type: 'ok'; id: number; result: RankReplies[HostMsgType]; rssPeak: number }
  | { v: 1; type: 'error'; id: number; message: string }
  | { v: 1; type: 'heartbeat'; rss: number; rssPeak: number };
