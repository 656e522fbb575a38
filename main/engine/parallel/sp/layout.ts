/**
 * How a step's tokens are laid out over the ranks of a sequence-parallel
 * group — one pure rule every rank evaluates for itself, so no layout ever
 * travels.
 *
 *   contiguous  rank s holds chunk s of n               (Ulysses; "naive" ring)
 *   zigzag      the sequence is cut into 2n chunks and rank s holds chunks
 *               s and 2n−1−s, so under a causal mask every rank has the same
 *               amount of attention work (ring / USP default)
 *
 * A step is "split" when every chunk gets at least one token; otherwise (decode,
 * short prompts) every rank holds all of the step's tokens ("replicated").
 */
import { splitEven } from '../split';
import type { Range } from '../split';

export type Chunking = 'contiguous' | 'zigzag';

/** Number of chunks a step of the group is cut into. */
export function chunkCount(n: number, chunking: Chunking): number {
  return chunking === 'zigzag' ? 2 * n : n;
}

/** True when S tokens split over n ranks leave no chunk empty. */
export function isSplit(S: number, n: number, chunking: Chunking): boolean {
  return n > 1 && S >= chunkCount(n, chunking);
}

/**
 * Runs of step-relative token offsets [start, end) that each of the n ranks
 * holds, in increasing order (runs[s] for rank s).
 */
export function seqRuns(S: number, n: number, chunking: Chunking): Range[][] {
  if (!isSplit(S, n, chunking)) return Array.from({ length: n }, () => [[0, S] as Range]);
  if (chunking === 'contiguous') return Array.from({ length: n }, (_, s) => [splitEven(S, n, s)]);
  const C = 2 * n;
  return Array.from({ length: n }, (_, s) => [splitEven(S, C, s), splitEven(S, C, C - 1 - s)]);
}

/** Total tokens of a list of runs. */
export function runTokens(runs: Range[]): number {
  return runs.reduce((a, [s, e]) => a + e - s, 0);
}

/** The rank whose runs hold step offset `offset`. */
export function ownerOf(runs: Range[][], offset: number): number {
  const r = runs.findIndex((rs) => rs.some(([s, e]) => offset >= s && offset < e));
  if (r < 0) throw new RangeError(`no rank holds token offset ${offset}`);
  return r;
}

/**
 * What the ring members' K/V caches hold, per batch: rows (tokens) and runs
 * per ring member. The ranks keep one to decide where a decode step's K/V goes
 * (sp/step.ts); the host keeps its own to state the ring traffic in closed
 * form (sp/comm.ts). Call `advance(S)` after each step.
 */
export class SpHistory {
  readonly rows: number[];
  readonly runs: number[];
  constructor(
    readonly size: number,
    readonly ulysses: number,
    readonly chunking: Chunking,
  ) {
    this.rows = new Array<number>(size / ulysses).fill(0);
    this.runs = new Array<number>(size / ulysses).fill(0);
  }

  /** The ring member that stores a replicated step's K/V (fewest rows, lowest index). */
  owner(): number {
    return this.rows.indexOf(Math.min(...this.rows));
  }

  advance(S: number): void {
    if (isSplit(S, this.size, this.chunking)) {
      seqRuns(S, this.size, this.chunking).forEach((rs, s) => {
        const m = Math.floor(s / this.ulysses);
        this.rows[m] += runTokens(rs);
        this.runs[m] += rs.length;
      });
    } else {
      const o = this.owner();
      this.rows[o] += S;
      if (this.runs[o] === 0) this.runs[o] = 1;
    }
  }
}
