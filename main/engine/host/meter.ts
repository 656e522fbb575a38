/**
 * What the host measures of its ranks since the last reset(): per rank the
 * compute / communication / bubble time of its steps, the KV cache it holds,
 * the spans of its timeline (when tracing), the closed-form traffic its
 * steps should have moved, and the expert load the MoE blocks reported.
 * Every step of every loop (host/step.ts, host/serving.ts) goes through
 * `account`, so the numbers mean the same whoever drove the step. Bench,
 * chat and tests read it directly.
 */
import type { ModelConfig } from '../model/types';
import type { Mesh } from '../parallel/mesh';
import type { RankRole } from '../parallel/plan';
import { stepComm } from '../parallel/comm';
import type { SpHistory } from '../parallel/sp/layout';
import { moeStepComm } from '../parallel/ep/comm';
import { microSplit } from '../parallel/ep/plan';
import { addLoad, emptyLoad } from '../parallel/ep/load';
import type { ExpertLoad } from '../parallel/ep/load';
import type { Expected } from '../comm/ledger';
import type { RankSpan, StepResult } from '../rank/protocol';

/** Where a rank's time went, summed over the steps since the last reset. */
export interface RankTime {
  steps: number;
  computeMs: number;
  commMs: number;
  /** blocked waiting for the previous pipeline stage */
  bubbleMs: number;
}

/** The shape of one step of some ranks: B sequences (ghosts included) of S new tokens each. */
export interface StepShape {
  B: number;
  S: number;
  /** real (non-ghost) sequences of the rank's replica (default B) */
  real?: (rank: number) => number;
  /** the batch's SP history, when its ranks are sequence-parallel (advanced by the caller after the step) */
  sp?: SpHistory;
  /** pipeline micro-batches of this step (default the spec's; 1 for a batch the host overlaps with others) */
  micro?: number;
}

export class Meter {
  /** Per global rank: compute / comm / bubble time since the last reset(). */
  readonly rankTimes: RankTime[] = [];
  /** Per global rank: the closed-form traffic of the steps since the last reset(). */
  readonly expected: Expected[] = [];
  /** Ask the ranks for the spans of every step (trace.json); drain them with drainSpans(). */
  tracing = false;
  private spans: RankSpan[][] = [];
  private lastKvBytes: number[] = [];
  private moeLoad: ExpertLoad | null = null;

  constructor(
    private readonly mesh: Mesh,
    private readonly roles: RankRole[],
    private readonly config: ModelConfig,
  ) {
    this.reset();
  }

  private get world(): number {
    return this.mesh.spec.world;
  }

  reset(): void {
    this.rankTimes.length = 0;
    this.expected.length = 0;
    this.moeLoad = null;
    for (let r = 0; r < this.world; r++) {
      this.rankTimes.push({ steps: 0, computeMs: 0, commMs: 0, bubbleMs: 0 });
      this.expected.push({});
    }
  }

  /** Account one step of `ranks` (results in the same order): closed-form traffic, times, KV bytes, spans, expert load. */
  account(ranks: number[], results: StepResult[], shape: StepShape): void {
    const micro = this.mesh.spec.pp > 1 ? (shape.micro ?? this.mesh.spec.micro) : 1;
    results.forEach((res, j) => {
      const rank = ranks[j];
      stepComm(this.expected[rank], this.roles[rank], this.mesh.place(rank), this.config, shape.B, shape.S, micro, shape.sp);
      this.record(rank, res);
    });
    this.accountMoe(ranks, results, shape, micro);
  }

  /** One rank's step: its times, KV bytes and spans. */
  private record(rank: number, res: StepResult): void {
    if (res.spans) (this.spans[rank] ??= []).push(...res.spans);
    this.lastKvBytes[rank] = res.kvBytes;
    const t = this.rankTimes[rank];
    t.steps++;
    t.computeMs += res.computeMs;
    t.commMs += res.commMs;
    t.bubbleMs += res.bubbleMs;
  }

  /**
   * MoE bookkeeping of one step over `ranks`: the expert load the ranks
   * report, and under EP the closed-form dispatch / combine bytes from the
   * routed counts of each rank's ep peers (all of them are in `ranks`).
   */
  private accountMoe(ranks: number[], results: StepResult[], shape: StepShape, micro: number): void {
    const moe = this.config.moe;
    if (!moe) return;
    const load = (this.moeLoad ??= emptyLoad(this.world, this.config.layers, moe.experts));
    const routed = new Map<number, number[]>();
    results.forEach((res, j) => {
      if (!res.moe) return;
      addLoad(load, ranks[j], res.moe.routed);
      const total = new Array<number>(moe.experts).fill(0);
      for (const counts of Object.values(res.moe.routed)) counts.forEach((n, e) => (total[e] += n));
      routed.set(ranks[j], total);
    });
    if (this.mesh.spec.ep <= 1) return;
    for (const rank of ranks) {
      const peers = this.mesh.place(rank).epGroup.map((r) => routed.get(r) ?? new Array<number>(moe.experts).fill(0));
      moeStepComm(this.expected[rank], this.roles[rank], this.config, microSplit(shape.B, shape.real?.(rank) ?? shape.B, micro), shape.S, peers);
    }
  }

  /** Per global rank, the spans recorded since the last drain (empty when tracing is off). */
  drainSpans(): RankSpan[][] {
    const out = Array.from({ length: this.world }, (_, r) => this.spans[r] ?? []);
    this.spans = [];
    return out;
  }

  /** Per global rank, the KV cache bytes it held after its last step. */
  kvBytes(): number[] {
    return Array.from({ length: this.world }, (_, r) => this.lastKvBytes[r] ?? 0);
  }

  /**
   * Expert load since reset(): tokens routed per layer × expert, summed over
   * ranks, per rank, and max ÷ mean per layer. null for a dense model.
   */
  expertLoad(): ExpertLoad | null {
    const moe = this.config.moe;
    if (!moe) return null;
    return structuredClone(this.moeLoad ?? emptyLoad(this.world, this.config.layers, moe.experts));
  }
}
