/**
 * The comm ledger: every collective and message a rank takes part in, counted
 * per op and group — calls, bytes this rank sent and received (the closed
 * forms in communicator.ts, identical on every transport), time inside the
 * call, and the part of that time spent waiting for the last peer to arrive
 * (arrival skew: load imbalance, told apart from the transfer itself).
 *
 * waitMs per transport: shm — from posting this rank's first window until
 * every peer has posted its own (exact); sockets — until the first byte from
 * the slowest peer arrived (includes one network latency); recv — until the
 * message started to arrive. ms − waitMs is the transfer / copy / reduce time.
 *
 * Everything returned is plain data (structured-clone-safe): a rank ships
 * summary() to the host as-is, and the host adds ranks up with mergeSummaries.
 */
import type { CommOp } from './communicator';

export interface OpTotals {
  count: number;
  bytesSent: number;
  bytesRecv: number;
  ms: number;
  waitMs: number;
}

/** Per op, summed over this rank's groups. */
export type LedgerSummary = Partial<Record<CommOp, OpTotals>>;

/** Per group, then per op. */
export type LedgerByGroup = Record<string, LedgerSummary>;

const zero = (): OpTotals => ({ count: 0, bytesSent: 0, bytesRecv: 0, ms: 0, waitMs: 0 });

function add(into: OpTotals, e: OpTotals): void {
  into.count += e.count;
  into.bytesSent += e.bytesSent;
  into.bytesRecv += e.bytesRecv;
  into.ms += e.ms;
  into.waitMs += e.waitMs;
}

/** One call as the timeline needs it: when it ended (performance.now() ms), how long it took, how much of that was waiting. */
export interface CallTiming {
  end: number;
  ms: number;
  waitMs: number;
}

export class Ledger {
  private groups: LedgerByGroup = {};
  private calls: CallTiming[] | null = null;

  record(op: CommOp, group: string, bytesSent: number, bytesRecv: number, ms: number, waitMs: number): void {
    const g = (this.groups[group] ??= {});
    const e = (g[op] ??= zero());
    const wait = Math.min(waitMs, ms);
    add(e, { count: 1, bytesSent, bytesRecv, ms, waitMs: wait });
    this.calls?.push({ end: performance.now(), ms, waitMs: wait });
  }

  /** Start keeping each call's timing (for a traced step), until takeCalls(). */
  keepCalls(): void {
    this.calls = [];
  }

  takeCalls(): CallTiming[] {
    const c = this.calls ?? [];
    this.calls = null;
    return c;
  }

  summary(): LedgerSummary {
    const out: LedgerSummary = {};
    for (const g of Object.values(this.groups)) {
      for (const [op, e] of Object.entries(g) as [CommOp, OpTotals][]) add((out[op] ??= zero()), e);
    }
    return out;
  }

  byGroup(): LedgerByGroup {
    return structuredClone(this.groups);
  }

  reset(): void {
    this.groups = {};
  }
}

/** Host side: add up the summaries of several ranks (null for ranks without a data plane). */
export function mergeSummaries(list: (LedgerSummary | null)[]): LedgerSummary {
  const out: LedgerSummary = {};
  for (const s of list) {
    if (!s) continue;
    for (const [op, e] of Object.entries(s) as [CommOp, OpTotals][]) add((out[op] ??= zero()), e);
  }
  return out;
}

/**
 * Closed-form traffic: what a plan should move, per op (count, bytes sent,
 * bytes received), set beside the measured LedgerSummary. Each strategy
 * states its own in its folder (parallel/<strategy>/comm.ts); parallel/comm.ts adds
 * them up per rank and step.
 */
export type Expected = Partial<Record<CommOp, Pick<OpTotals, 'count' | 'bytesSent' | 'bytesRecv'>>>;

export function addExpected(into: Expected, op: CommOp, count: number, sent: number, recv: number): void {
  const e = (into[op] ??= { count: 0, bytesSent: 0, bytesRecv: 0 });
  e.count += count;
  e.bytesSent += sent;
  e.bytesRecv += recv;
}
