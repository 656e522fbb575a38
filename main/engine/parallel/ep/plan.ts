/**
 * Expert parallelism, the pure rules: which experts a rank holds, which
 * ranks of an ep group hold the same tokens, and how a batch splits into
 * micro-batches with its ghosts. Every rank evaluates them for itself; the
 * host evaluates them for the closed form (ep/comm.ts).
 *
 * Placement. Experts are split over the ep group contiguously (splitEven):
 * ep rank p owns experts [p·E/ep, (p+1)·E/ep) when ep divides E, and the
 * first E mod ep ranks one more otherwise (6 experts over ep=4: 2, 2, 1, 1).
 * The router and the shared expert are replicated on every rank.
 *
 * Token classes. Ranks of an ep group that differ only in their tp
 * coordinate hold the same tokens after attention (TP replicates the
 * residual stream). Such a class of c ranks splits its tokens: member i
 * routes and dispatches only its share, rows splitEven(rows, c, i), and the
 * class all-gathers the combined outputs afterwards, so every member ends
 * with the full sublayer output (the "token share" choice for tp=N,ep=N,
 * spec key ep_tp=share; ep_tp=allreduce swaps it for experts-on-all-tokens +
 * all-reduce when ep = tp). With ep ≤ tp the class is the ep group itself;
 * with ep > tp it is the tp group. Other tp/ep ratios are refused
 * (validate.ts).
 *
 * Without EP (ep=1) and tp>1, experts are tensor-parallel like a dense MLP:
 * every rank holds a tp slice of every expert's FFN (and of the shared
 * expert), routes all tokens, and the sublayer output is all-reduced over tp.
 */
import type { ShardPlan } from '../plan';
import { splitEven } from '../split';
import type { Range } from '../split';

/** Experts [start, end) held by ep rank `rank` of `size`. */
export function expertRange(experts: number, size: number, rank: number): Range {
  return splitEven(experts, size, rank);
}

/** The ep rank that owns expert `e`. */
export function ownerOf(e: number, experts: number, size: number): number {
  for (let p = 0; p < size; p++) {
    const [a, b] = splitEven(experts, size, p);
    if (e >= a && e < b) return p;
  }
  throw new RangeError(`expert ${e} is outside 0..${experts - 1}`);
}

/**
 * The token class of a rank: the ranks of its ep group holding the same
 * tokens, via which communicator their outputs are gathered ('ep' when the
 * class is the ep group, 'tp' when it is the tp group), its size and this
 * rank's index. null when the rank routes its tokens alone (c = 1).
 */
export function tokenClass(plan: Pick<ShardPlan, 'tp' | 'ep'>): { via: 'ep' | 'tp'; size: number; index: number } | null {
  const ep = plan.ep?.size ?? 1;
  const tp = plan.tp.size;
  if (ep <= 1 || tp <= 1) return null;
  if (tp % ep === 0) return { via: 'ep', size: ep, index: plan.ep!.rank };
  if (ep % tp === 0) return { via: 'tp', size: tp, index: plan.tp.rank };
  throw new Error(`ep=${ep} and tp=${tp}: one must divide the other (the ranks of an ep group that share tokens must form whole tp groups or a part of one)`);
}

/**
 * Micro-batches of a batch of `seqs` sequences of which the first `real` are
 * real (the rest lockstep ghosts), split as parallel/pp/pipeline.ts microBatches splits them.
 */
export function microSplit(seqs: number, real: number, micro: number): { seqs: number; real: number }[] {
  const m = Math.max(1, Math.min(micro, seqs));
  return Array.from({ length: m }, (_, i) => {
    const [a, b] = splitEven(seqs, m, i);
    return { seqs: b - a, real: Math.max(0, Math.min(real - a, b - a)) };
  });
}
