/**
 * trace.json: Chrome trace-event format (the JSON array form), which Perfetto
 * and chrome://tracing open. One process per rank (pid = rank, named by
 * `process_name` metadata with its mesh coordinate) and one process for the
 * host (requests of a serving run). Spans are complete events (ph 'X').
 *
 * Where the spans come from:
 *   - the engine's own per-segment / per-collective spans (engine.tracing +
 *     drainSpans()) when the engine offers them — the real timeline;
 *   - otherwise StepRecorder rebuilds one span per step per rank from the
 *     rank's compute / comm / bubble totals sampled after each step. Durations
 *     are measured; the order inside a step (bubble, compute, comm) is not, and
 *     every such span says so in its args (`reconstructed: true`).
 */
import type { TraceEvent } from './contract';

/** One span of one rank (the engine's RankSpan shape): ts and dur in µs, ts epoch-based. */
export interface RankSpan {
  name: string;
  cat: 'compute' | 'comm' | 'wait' | 'bubble' | (string & {});
  ts: number;
  dur: number;
  args?: Record<string, unknown>;
}

/** A request of a serving run, for the host process (ms relative to `t0Us`). */
export interface HostSpan {
  name: string;
  cat: string;
  ts: number;
  dur: number;
  tid?: number;
  args?: Record<string, unknown>;
}

export interface TraceInput {
  /** per global rank: its label (e.g. `rank 1 · dp0 pp0 tp1`) and spans */
  ranks: { label: string; spans: RankSpan[] }[];
  host?: HostSpan[];
  /** 'engine' | 'reconstructed' | 'none': recorded in the metadata */
  source: string;
}

/** Epoch-based µs now, the clock the engine's spans use. */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export function buildTrace(t: TraceInput): TraceEvent[] {
  const world = t.ranks.length;
  const hostPid = world;
  const all = [...t.ranks.flatMap((r) => r.spans.map((s) => s.ts)), ...(t.host ?? []).map((s) => s.ts)];
  const t0 = all.length ? Math.min(...all) : 0;
  const events: TraceEvent[] = [];
  t.ranks.forEach((r, pid) => {
    events.push({ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: r.label } });
    events.push({ name: 'process_sort_index', ph: 'M', ts: 0, pid, tid: 0, args: { sort_index: pid } });
    events.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: 'rank' } });
    for (const s of r.spans) {
      events.push({ name: s.name, cat: s.cat, ph: 'X', ts: round(s.ts - t0), dur: round(Math.max(0, s.dur)), pid, tid: 0, ...(s.args ? { args: s.args } : {}) });
    }
  });
  if (t.host && t.host.length > 0) {
    events.push({ name: 'process_name', ph: 'M', ts: 0, pid: hostPid, tid: 0, args: { name: 'host (requests)' } });
    events.push({ name: 'process_sort_index', ph: 'M', ts: 0, pid: hostPid, tid: 0, args: { sort_index: hostPid } });
    // row 0: the scheduler's steps; row k: request k − 1
    for (const tid of [...new Set(t.host.map((s) => s.tid ?? 0))].sort((a, b) => a - b)) {
      events.push({ name: 'thread_name', ph: 'M', ts: 0, pid: hostPid, tid, args: { name: tid === 0 ? 'scheduler' : `request ${tid - 1}` } });
    }
    for (const s of t.host) {
      events.push({ name: s.name, cat: s.cat, ph: 'X', ts: round(s.ts - t0), dur: round(Math.max(0, s.dur)), pid: hostPid, tid: s.tid ?? 0, ...(s.args ? { args: s.args } : {}) });
    }
  }
  events.push({ name: 'trace_source', ph: 'M', ts: 0, pid: 0, tid: 0, args: { source: t.source } });
  return events;
}

function round(us: number): number {
  return Math.round(us * 1000) / 1000;
}

/** The per-rank totals a StepRecorder samples (Engine.rankTimes entries). */
export interface RankTotals {
  steps: number;
  computeMs: number;
  commMs: number;
  bubbleMs: number;
}

/**
 * Rebuilds per-step spans from per-rank running totals: call sample() right
 * after each step completes (the engine has added that step's times). For a
 * rank whose step count grew, the step ends now and lasts bubble + compute +
 * comm (clamped to start no earlier than the rank's previous step ended).
 */
export class StepRecorder {
  private readonly last: RankTotals[];
  private readonly lastEnd: number[];
  readonly spans: RankSpan[][];

  constructor(world: number) {
    this.last = Array.from({ length: world }, () => ({ steps: 0, computeMs: 0, commMs: 0, bubbleMs: 0 }));
    this.lastEnd = new Array<number>(world).fill(-Infinity);
    this.spans = Array.from({ length: world }, () => []);
  }

  /** Forget the totals seen so far (after the engine's resetTimes()). */
  rebase(totals: RankTotals[]): void {
    totals.forEach((t, r) => (this.last[r] = { ...t }));
  }

  sample(totals: RankTotals[], endUs: number = nowUs()): void {
    totals.forEach((t, r) => {
      const prev = this.last[r];
      if (t.steps <= prev.steps) return;
      const d = { bubble: t.bubbleMs - prev.bubbleMs, compute: t.computeMs - prev.computeMs, comm: t.commMs - prev.commMs };
      this.last[r] = { ...t };
      const totalUs = 1000 * Math.max(0, d.bubble + d.compute + d.comm);
      const start = Math.max(this.lastEnd[r], endUs - totalUs);
      const scale = totalUs > 0 ? Math.min(1, (endUs - start) / totalUs) : 0;
      this.lastEnd[r] = endUs;
      const steps = t.steps - prev.steps;
      this.spans[r].push({ name: `step ${t.steps}`, cat: 'step', ts: start, dur: endUs - start, args: { reconstructed: true, steps } });
      let ts = start;
      for (const [cat, ms] of [['bubble', d.bubble], ['compute', d.compute], ['comm', d.comm]] as const) {
        const dur = 1000 * Math.max(0, ms) * scale;
        if (dur <= 0) continue;
        this.spans[r].push({ name: cat, cat, ts, dur, args: { reconstructed: true, ms: Math.max(0, ms) } });
        ts += dur;
      }
    });
  }
}

/** pids of the processes named in a trace (metadata `process_name`). */
export function tracedProcesses(events: TraceEvent[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const e of events) if (e.ph === 'M' && e.name === 'process_name') out.set(e.pid, String(e.args?.['name'] ?? ''));
  return out;
}
