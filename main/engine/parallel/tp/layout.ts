/**
 * Which heads / KV heads / FFN columns / vocab rows a tensor-parallel rank
 * owns (Megatron-LM's split, nano-vllm's Column/RowParallelLinear): heads
 * and FFN columns split contiguously over the tp ranks (splitEven, so tp
 * need not divide them: 6 heads over 4 ranks are 2/2/1/1), vocab rows split
 * for the vocab-parallel embedding and LM head, and the KV heads a rank's
 * query heads read. Pure: every rank evaluates it for itself, the host
 * evaluates it for the closed forms and the memory per rank.
 *
 * KV slots. The fused GroupQueryAttention kernel wants every local query
 * head i to read local KV slot ⌊i / g⌋ for one group size g. A rank whose
 * heads read their KV heads in runs of different lengths (6 query / 2 KV
 * heads over tp=3: rank 1 holds query heads 2 and 3, one from each group)
 * gets g = the gcd of its run lengths and each KV head once per g of its
 * query heads: kvSlots lists the model KV head behind each local slot,
 * repeated where needed ([0, 1] there; 8 / 4 over tp=3: rank 0 holds query
 * heads 0–2, runs 2 and 1, g = 1, slots [0, 0, 1]). KV heads two ranks both
 * need are held by both (replicated), as when tp exceeds the KV heads.
 */
import type { ModelConfig } from '../../model/types';
import { splitEven } from '../split';
import type { Range } from '../split';

export interface ShardLayout {
  heads: Range;
  /** the model KV head behind each local KV slot (contiguous, repeated where the grouping needs it) */
  kvSlots: number[];
  ffn: Range;
  vocab: Range;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * How the query heads [a, b) read their KV heads, without listing them (a
 * config may claim millions of heads): `runs` KV heads are read, the first
 * by `first` query heads, the last by `last`, any between by G each; `g` is
 * the gcd of those run lengths, so the rank holds (b − a) / g KV slots.
 */
export function kvRuns(heads: number, kvHeads: number, [a, b]: Range): { runs: number; first: number; last: number; G: number; g: number } {
  if (heads % kvHeads !== 0) throw new RangeError(`kvSlots: ${kvHeads} KV heads do not divide ${heads} heads`);
  if (a < 0 || b > heads || a >= b) throw new RangeError(`kvSlots: bad query range [${a}, ${b})`);
  const G = heads / kvHeads;
  const k0 = Math.floor(a / G);
  const k1 = Math.floor((b - 1) / G);
  const runs = k1 - k0 + 1;
  const first = Math.min(b, (k0 + 1) * G) - a;
  const last = runs === 1 ? first : b - k1 * G;
  const g = gcd(gcd(first, last), runs > 2 ? G : 0);
  return { runs, first, last, G, g };
}

/** True when some KV head sits in more than one local slot (the rank's heads cut a KV group unevenly). */
export function holdsKvTwice(heads: number, kvHeads: number, range: Range): boolean {
  const { first, last, runs, G, g } = kvRuns(heads, kvHeads, range);
  return first !== g || last !== g || (runs > 2 && G !== g);
}

/** KV slots of the query heads [a, b) of a model with `heads` query and `kvHeads` KV heads (see the header). */
export function kvSlots(heads: number, kvHeads: number, [a, b]: Range): number[] {
  const { G, g } = kvRuns(heads, kvHeads, [a, b]);
  const slots: number[] = [];
  for (let kv = Math.floor(a / G); kv * G < b; kv++) {
    const len = Math.min(b, (kv + 1) * G) - Math.max(a, kv * G);
    for (let i = 0; i < len / g; i++) slots.push(kv);
  }
  return slots;
}

/** Which heads / KV slots / FFN columns / vocab rows a TP rank owns. */
export function shardLayout(c: ModelConfig, tp: { rank: number; size: number }): ShardLayout {
  if (tp.size > c.heads) throw new Error(`tp=${tp.size} exceeds the ${c.heads} attention heads; use tp ≤ ${c.heads}`);
  const heads = splitEven(c.heads, tp.size, tp.rank);
  return { heads, kvSlots: kvSlots(c.heads, c.kvHeads, heads), ffn: splitEven(c.ffn, tp.size, tp.rank), vocab: splitEven(c.vocabSize, tp.size, tp.rank) };
}

/** The largest query-head and KV-slot counts over the tp ranks (the rank that bounds memory). */
export function maxLocalHeads(heads: number, kvHeads: number, tp: number): { q: number; kv: number } {
  let q = 0;
  let kv = 0;
  for (let r = 0; r < tp; r++) {
    const h = splitEven(heads, tp, r);
    q = Math.max(q, h[1] - h[0]);
    kv = Math.max(kv, (h[1] - h[0]) / kvRuns(heads, kvHeads, h).g);
  }
  return { q, kv };
}
