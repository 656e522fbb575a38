/**
 * The sequence-parallel side of one step on one rank (Ulysses, ring, USP;
 * Megatron-SP has its own, sp/megatron/plan.ts):
 *
 *   spStep           the step's layout on this batch, the same on every sp
 *                    rank (sp/layout.ts): split (prefill: each rank embeds and
 *                    runs its MLPs on its own tokens) or replicated (decode,
 *                    short prompts: every rank holds all of the step's tokens),
 *                    and, when replicated, which ring member stores its K/V
 *   logitsToSampler  after a split step, the last token's logits live on the
 *                    rank holding that token; it sends them (B·V floats) to sp
 *                    rank 0, which samples. No other rank keeps logits.
 */
import type { Communicator } from '../../comm/communicator';
import type { ort } from '../../runtime/ort';
import type { BatchState, BlockState } from '../../runtime/batch';
import { recordSpan } from '../../runtime/stream';
import type { SegmentTiming } from '../../runtime/stream';
import type { Range } from '../split';
import { isSplit, ownerOf, seqRuns, SpHistory } from './layout';
import type { Chunking } from './layout';

/** This rank's place in its sp group (ring = sp / ulysses members). */
export interface SpLinks {
  rank: number;
  size: number;
  ring: number;
  chunking: Chunking;
  group: Communicator | null;
}

/** What the stage tells the SP blocks about one step (identical on every rank of the sp group). */
export interface SpStepPlan {
  mode: 'split' | 'replicated';
  /** tokens per sequence in the cache before this step */
  past: number;
  /** new tokens per sequence in this step (the whole step, not my share) */
  S: number;
  /** split: step-relative runs [start, end) held by each sp rank */
  runs: Range[][];
  /** replicated: the ring member that stores this step's K/V */
  owner: number;
  /** tensors shared by every layer of the step (positions, masks, empty accumulators) */
  cache: Map<string, ort.Tensor>;
}

const HISTORY = 'sp.history';

/** The layout of one SP step on this batch; advances the batch's record of what each ring member holds. */
export function spStep(sp: SpLinks, state: BatchState, S: number): SpStepPlan {
  // what each ring member's K/V cache holds: a decode step's K/V goes where there is least
  let hist = state.blocks.get(HISTORY) as (SpHistory & BlockState) | undefined;
  if (!hist) state.blocks.set(HISTORY, (hist = Object.assign(new SpHistory(sp.size, sp.size / sp.ring, sp.chunking), { kvBytes: () => 0 })));
  const split = isSplit(S, sp.size, sp.chunking);
  const owner = split ? 0 : hist.owner();
  hist.advance(S);
  return { mode: split ? 'split' : 'replicated', past: state.length, S, runs: seqRuns(S, sp.size, sp.chunking), owner, cache: new Map() };
}

/** The tokens of the step sp rank `rank` holds: its runs when split, all of them when replicated. */
export function myRuns(rank: number, plan: SpStepPlan): Range[] {
  return plan.mode === 'split' ? plan.runs[rank] : [[0, plan.S]];
}

/**
 * Route the last position's logits to sp rank 0 (the sampler): `part` on
 * rank 0 afterwards, null on every other rank. Returns the ms spent moving them.
 */
export async function logitsToSampler(sp: SpLinks, plan: SpStepPlan, part: Float32Array, trace: SegmentTiming[]): Promise<{ logits: Float32Array | null; ms: number }> {
  if (plan.mode !== 'split') return { logits: sp.rank === 0 ? part : null, ms: 0 };
  const holder = ownerOf(plan.runs, plan.S - 1);
  const me = sp.rank;
  const t = performance.now();
  let logits: Float32Array | null = part;
  if (holder !== 0 && me === holder) await sp.group!.send(0, part);
  if (holder !== 0 && me === 0) logits = await sp.group!.recv(holder);
  if (holder !== 0 && (me === 0 || me === holder)) recordSpan(trace, 'logits to sp rank 0', t, 'comm');
  return { logits: me === 0 ? logits : null, ms: performance.now() - t };
}
