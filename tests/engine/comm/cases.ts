/**
 * What the communicator test ranks compute, shared by the rank entry
 * (comm-rank.ts) and the naive references in collectives.test.ts.
 */
import type { LedgerSummary } from '../../../main/engine/comm/ledger';
import type { WorldSetup } from '../../../main/engine/comm/world';

export interface RankJob {
  setup: WorldSetup;
  rank: number;
  sizes: number[];
  /** rank `rank` SIGKILLs itself before size index `at` */
  die?: { rank: number; at: number };
  /** this rank joins, then never calls a collective (it hangs until killed) */
  hang?: number;
}

export type RankReply = { out: Record<string, Float32Array | Int32Array>; ledger: LedgerSummary; wire: { sent: number; recv: number } | null } | { error: string };

/** Rank r's input of length n, variant k: multiples of 1/8, so sums over ≤ 8 ranks are exact in float32. */
export function input(r: number, n: number, k: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (((i * 7 + r * 13 + k * 31) % 101) - 50) / 8);
}

/** Uneven reduce-scatter / all-gather counts: rank 1 gets none, the others differ. */
export function gatherCounts(n: number, len: number): number[] {
  return Array.from({ length: n }, (_, r) => (r === 1 ? 0 : Math.floor(len / n) + r));
}

/** All-to-all counts rank `me` sends to each peer: uneven, some zero (including some to itself). */
export function a2aCounts(n: number, len: number, me: number): number[] {
  return Array.from({ length: n }, (_, p) => ((len + me * 3 + p) % 5 === 0 ? 0 : ((len + me + p) % 17) + p + Math.floor(len / (2 * n))));
}

export function p2pLength(len: number, from: number, to: number): number {
  return len + from * 5 + to;
}

/** Int32 data riding a float collective, with bit patterns that are NaNs, infinities and denormals as floats. */
export function intPayload(r: number): Int32Array {
  return Int32Array.from([-1, 0x7fc00001, 0x7f800000, 1, r, -2147483648, 0x00000003]);
}
