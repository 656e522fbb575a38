/**
 * Contiguous splits of a count into parts: the one rule every shard uses
 * (attention heads over tp, vocab rows over tp, layers over pp, a sequence
 * over sp, experts over ep).
 *
 * Ranges are half-open, [start, end). When `parts` does not divide `n`, the
 * first `n % parts` parts get one item more (10 over 4 → 3/3/2/2), so every
 * rank can compute every other rank's range without communication.
 */

export type Range = [start: number, end: number];

/** [start, end) of part `index` of `n` items split into `parts` contiguous parts. */
export function splitEven(n: number, parts: number, index: number): Range {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`splitEven: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`splitEven: parts must be a positive integer, got ${parts}`);
  if (!Number.isInteger(index) || index < 0 || index >= parts) {
    throw new RangeError(`splitEven: index ${index} is outside 0..${parts - 1}`);
  }
  const base = Math.floor(n / parts);
  const extra = n % parts;
  const start = index * base + Math.min(index, extra);
  return [start, start + base + (index < extra ? 1 : 0)];
}

/** Sizes of all parts, in order: splitSizes(8, 3) = [3, 3, 2]. */
export function splitSizes(n: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => {
    const [s, e] = splitEven(n, parts, i);
    return e - s;
  });
}

/**
 * KV heads read by the query heads [qStart, qEnd) under grouped-query
 * attention (query head h reads KV head ⌊h / (heads/kvHeads)⌋), as a
 * half-open range. When a tp rank owns fewer KV heads than it needs to
 * split evenly, neighbouring ranks get overlapping ranges: those KV heads are
 * replicated, which is the documented fallback for kvHeads % tp ≠ 0.
 */
export function kvHeadRange(heads: number, kvHeads: number, qStart: number, qEnd: number): Range {
  if (heads % kvHeads !== 0) throw new RangeError(`kvHeadRange: ${kvHeads} KV heads do not divide ${heads} heads`);
  if (qStart < 0 || qEnd > heads || qStart >= qEnd) throw new RangeError(`kvHeadRange: bad query range [${qStart}, ${qEnd})`);
  const group = heads / kvHeads;
  return [Math.floor(qStart / group), Math.floor((qEnd - 1) / group) + 1];
}

/** Divisors of n in increasing order (the valid degrees for splitting n evenly). */
export function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}
