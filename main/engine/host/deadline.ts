/**
 * How long one step may take before the host counts it as hung.
 *
 * A user-given bound (`--timeout S`, EngineOptions.timeoutMs) is used as is.
 * Otherwise the bound scales with what this cluster has already shown: a
 * step is modelled as `overhead + perToken × tokens` (the slowest of each
 * seen so far) and may take FACTOR times that, never less than FLOOR_MS. A
 * cluster that has not stepped yet (the first prefill) gets the generous
 * FIRST_MS + tokens × 100 ms, since nothing is known of the machine yet.
 *
 * Liveness is a separate, faster signal: a rank whose heartbeat thread goes
 * silent (stopped, frozen) is caught by the cluster's watchdog in seconds.
 */
export const FLOOR_MS = 15_000;
export const FACTOR = 20;
export const FIRST_MS = 60_000;

export class StepBudget {
  private overhead = 0;
  private perToken = 0;
  private seen = false;

  /** userMs: the user's bound for one step (ms), or undefined to scale from the steps seen. */
  constructor(readonly userMs?: number) {}

  boundMs(tokens: number): number {
    if (this.userMs !== undefined) return this.userMs;
    if (!this.seen) return FIRST_MS + tokens * 100;
    return Math.max(FLOOR_MS, Math.ceil(FACTOR * (this.overhead + this.perToken * tokens)));
  }

  /** A step of `tokens` tokens took `ms` (wall, host side). */
  observe(tokens: number, ms: number): void {
    if (!(ms >= 0) || !(tokens >= 1)) return;
    this.seen = true;
    if (tokens <= 4) this.overhead = Math.max(this.overhead, ms);
    else this.perToken = Math.max(this.perToken, ms / tokens);
  }
}
