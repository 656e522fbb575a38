/**
 * Progress on stderr for anything that takes longer than a second: specs
 * done / total, the current spec and phase, requests done of a serving run,
 * and an ETA. Nothing is printed during the first second (quick commands stay
 * quiet), at most one line per interval otherwise; on a terminal the line is
 * rewritten in place, in a log one line each. `--quiet` (and `--json`)
 * turn it off. stdout is never touched, so `--json` output stays one document.
 */

import type { BenchProgress } from '../lab/bench-options';

/** What a benchmark reports as it goes (lab/bench-options.ts). */
export type ProgressState = BenchProgress;

/** Fraction of the whole job done: finished specs plus the finished share of the current one. */
export function fractionDone(s: ProgressState): number {
  if (s.total <= 0) return 0;
  const inner = s.requestsTotal && s.requestsTotal > 0 && s.done < s.total ? Math.min(1, (s.requestsDone ?? 0) / s.requestsTotal) : 0;
  return Math.min(1, (s.done + inner) / s.total);
}

/** Seconds left at the pace so far; null until something is done. */
export function etaSeconds(elapsedMs: number, fraction: number): number | null {
  if (fraction <= 0 || fraction >= 1 || elapsedMs <= 0) return fraction >= 1 ? 0 : null;
  return (elapsedMs / fraction - elapsedMs) / 1000;
}

export function formatDuration(s: number): string {
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s - 60 * m)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function progressLine(s: ProgressState, elapsedMs: number): string {
  const parts = [`[${s.done}/${s.total} specs]`, s.label];
  if (s.requestsTotal) parts.push(`requests ${s.requestsDone ?? 0}/${s.requestsTotal}`);
  else if (s.message) parts.push(s.message);
  const eta = etaSeconds(elapsedMs, fractionDone(s));
  parts.push(`${formatDuration(elapsedMs / 1000)} elapsed`);
  if (eta !== null && s.done < s.total) parts.push(`ETA ${formatDuration(eta)}`);
  return parts.join(' · ');
}

export interface ProgressOptions {
  quiet?: boolean;
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** nothing before this many ms (default 1000) */
  delayMs?: number;
  /** at most one line per this many ms, except when a spec finishes (default 500) */
  intervalMs?: number;
  now?: () => number;
}

export class Progress {
  private readonly t0: number;
  private last = -Infinity;
  private lastDone = -1;
  private drawn = false;
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly now: () => number;

  constructor(private readonly o: ProgressOptions = {}) {
    this.now = o.now ?? (() => Date.now());
    this.t0 = this.now();
    this.stream = o.stream ?? process.stderr;
  }

  update(s: ProgressState): void {
    if (this.o.quiet) return;
    const t = this.now();
    const elapsed = t - this.t0;
    if (elapsed < (this.o.delayMs ?? 1000)) return;
    const specFinished = s.done !== this.lastDone;
    if (!specFinished && t - this.last < (this.o.intervalMs ?? 500)) return;
    this.last = t;
    this.lastDone = s.done;
    const line = progressLine(s, elapsed);
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K${line}`);
    else this.stream.write(line + '\n');
    this.drawn = true;
  }

  /** End the in-place line so what follows starts on its own line. */
  end(): void {
    if (this.drawn && this.stream.isTTY) this.stream.write('\n');
    this.drawn = false;
  }
}
