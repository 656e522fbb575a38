/**
 * A benchmark's options and the pure rules derived from them: the seeded
 * workload, the order specs run in, how many positions an engine needs.
 */
import { Rng } from '../engine/sample/rng';
import { formatSpec, parseSpec } from '../engine/parallel/spec';
import type { DeviceKindName, RunRecord, WorkloadKind } from './contract';
import type { Slo } from './metrics';

export type { WorkloadKind };

export interface BenchOptions {
  model: string;
  specs: string[];
  workload: WorkloadKind;
  promptLen: number;
  outputLen: number;
  batch: number;
  reps: number;
  /** serving */
  requests?: number;
  rate?: number;
  maxBatch?: number;
  slo?: Slo;
  threadsPerRank?: number;
  /** ms one step may take before the run counts as hung */
  timeoutMs?: number;
  device?: DeviceKindName;
  seed: number;
  verify?: boolean;
  ceiling?: boolean;
  /** also run every PP spec with overlap across steps off, labelled `<spec>/no-overlap` */
  ppCompare?: boolean;
  outDir: string;
  signal?: AbortSignal;
  onProgress?: (p: BenchProgress) => void;
  /** each run folder as soon as it is written */
  onRecord?: (r: RunRecord, dir: string) => void;
}

export interface BenchProgress {
  /** specs (variants) finished, and how many there are */
  done: number;
  total: number;
  label: string;
  message: string;
  /** serving: requests finished of this spec's workload */
  requestsDone?: number;
  requestsTotal?: number;
}

export interface BenchResult {
  records: RunRecord[];
  dirs: string[];
}

export class BenchCancelled extends Error {
  constructor() {
    super('the benchmark was cancelled');
    this.name = 'BenchCancelled';
  }
}

/** The prompts of a prefill / decode workload: B × L token ids from the seed (special low ids skipped). */
export function workloadPrompts(B: number, L: number, vocab: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: B }, () => Array.from({ length: L }, () => 4 + Math.floor(rng.next() * (vocab - 4))));
}

/** `single` first (the reference), then the others in the order given, without duplicates. */
export function orderSpecs(specs: string[]): string[] {
  const canon = specs.map((s) => formatSpec(parseSpec(s)));
  const out = ['single'];
  for (const s of canon) if (!out.includes(s)) out.push(s);
  return out;
}

/** New tokens a measured rep generates per sequence (a prefill workload stops at the first). */
export const measuredOutput = (o: BenchOptions) => (o.workload === 'prefill' ? 1 : o.outputLen);
/** Greedy steps compared with single under --verify. */
export const verifySteps = (o: BenchOptions) => Math.max(1, Math.min(o.outputLen, 8));

/**
 * Positions one sequence fills (the last new token is never fed back): the
 * engine is built for exactly this, and Engine.start refuses it before any
 * rank starts when the model's context is shorter.
 */
export function positionsNeeded(o: BenchOptions): number {
  return o.promptLen + Math.max(measuredOutput(o), o.verify ? verifySteps(o) : 1) - 1;
}
