/** The data of a served workload (host/serving.ts): requests in, their timelines and the scheduler's steps out. */
import type { SamplingParams } from '../types';

export interface ServeRequest {
  id: number;
  /** ms after the start of `serve` at which the request arrives */
  arrivalMs: number;
  prompt: number[];
  maxNewTokens: number;
  sampling?: SamplingParams;
  seed?: number;
}

export interface ServeOptions {
  /** most sequences in one replica's running batch (default 16) */
  maxBatch?: number;
  eosIds?: number[];
  ignoreEos?: boolean;
  /** a request finished (all its tokens are out) */
  onFinish?: (r: ServedRequest, done: number, total: number) => void;
}

export interface ServedRequest {
  id: number;
  arrivalMs: number;
  /** when its prefill step began */
  firstScheduledMs: number;
  /** when each output token came out (ms since the start of `serve`) */
  tokenMs: number[];
  tokens: number[];
  promptLen: number;
  finish: 'length' | 'eos' | 'stop';
  replica: number;
  /** which of the replica's lanes ran it (ServeStepLog.lane) */
  lane: number;
}

export interface ServeStepLog {
  replica: number;
  /** which of the replica's lanes stepped (0 … micro − 1 under PP overlap, else 0) */
  lane: number;
  kind: 'prefill' | 'decode';
  startMs: number;
  endMs: number;
  /** sequences in the step */
  batch: number;
  /** new tokens per sequence */
  S: number;
}

export interface ServeResult {
  requests: ServedRequest[];
  steps: ServeStepLog[];
  /** from the start of `serve` to the last token */
  durationMs: number;
  mode: 'continuous' | 'one-at-a-time';
  notes: string[];
}
