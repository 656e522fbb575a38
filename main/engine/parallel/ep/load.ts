/**
 * Expert load: how many rows each rank routed to each expert of each layer
 * (the ranks report their counts in every step result), summed by the host
 * (host/meter.ts) into tokens per layer × expert and max ÷ mean per layer.
 */

/** Expert load: tokens routed per layer × expert, and max ÷ mean per layer (1 = perfectly balanced). */
export interface ExpertLoad {
  /** [layer][expert] tokens routed since the last reset, summed over ranks */
  tokens: number[][];
  /** [global rank][layer][expert] tokens that rank routed (its share of the tokens) */
  byRank: number[][][];
  /** per layer: max over experts ÷ mean over experts (NaN for a layer that routed nothing) */
  balancedness: number[];
}

export function emptyLoad(world: number, layers: number, experts: number): ExpertLoad {
  const grid = () => Array.from({ length: layers }, () => new Array<number>(experts).fill(0));
  return { tokens: grid(), byRank: Array.from({ length: world }, grid), balancedness: new Array<number>(layers).fill(Number.NaN) };
}

/** Add one rank's routed counts of one step ({ layer: counts per expert }). */
export function addLoad(load: ExpertLoad, rank: number, routed: Record<number, number[]>): void {
  for (const [l, counts] of Object.entries(routed)) {
    const layer = Number(l);
    counts.forEach((n, e) => {
      load.tokens[layer][e] += n;
      load.byRank[rank][layer][e] += n;
    });
  }
  load.balancedness = load.tokens.map(balancedness);
}

/** max ÷ mean of one layer's per-expert counts. */
export function balancedness(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return Number.NaN;
  return Math.max(...counts) / (total / counts.length);
}
