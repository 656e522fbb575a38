/**
 * Next-token sampling from one row of logits (V), in the order Hugging Face's
 * logits processors apply them:
 *
 *   1. repetition penalty (CTRL, Keskar et al. 2019): for every distinct id in
 *      the history, a positive logit is divided by the penalty, a negative one
 *      multiplied by it;
 *   2. greedy (or temperature 0): argmax, ties → the LOWEST id (DESIGN.md);
 *   3. temperature: logits / T;
 *   4. top-k: keep the k largest (ties → lower ids first);
 *   5. top-p (nucleus, Holtzman et al. 2019): keep the smallest prefix of the
 *      tokens ordered by probability whose cumulative probability ≥ p
 *      (renormalised after top-k; at least one token is kept);
 *   6. draw one token with the caller's seeded Rng.
 *
 * The input logits are never modified. Cost for V = 32000: one pass for the
 * penalty copy (only when a penalty is set), one for the softmax normaliser,
 * and a size-k heap instead of sorting the vocabulary; top-p alone first looks
 * at the best 64 tokens and falls back to a histogram of the logits (no full
 * sort) when the nucleus is larger. Scratch buffers are reused between calls (this is
 * synchronous code, so one set per process is enough).
 *
 * One file (~300 lines) because it is one pipeline: the fast paths (top-k
 * heap, the 64-token nucleus probe, the histogram fallback) only make sense
 * beside each other.
 */
import type { SamplingParams } from '../types';
import type { Rng } from './rng';

/** Pick the next token id from `logits` (V); `history` = prompt + generated ids (for the penalty). */
export function sampleToken(logits: Float32Array, params: SamplingParams, history: readonly number[], rng: Rng): number {
  checkParams(params, logits.length);
  const penalty = params.repetitionPenalty ?? 1;
  const src = penalty !== 1 && history.length > 0 ? penalized(logits, history, penalty) : logits;
  const temperature = params.temperature ?? 1;
  const topK = params.topK ?? 0;
  const topP = params.topP ?? 1;
  if (params.greedy || temperature === 0 || topK === 1) return argmax(src);

  const V = src.length;
  if (topK > 0 && topK < V) {
    const ids = topIds(src, topK);
    return drawTopK(src, ids, temperature, topP, rng);
  }
  if (topP < 1) return drawNucleus(src, temperature, topP, rng);
  return drawFull(src, temperature, rng);
}

/** Index of the largest logit; ties → the lowest id. */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  let bestVal = logits[0];
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > bestVal) {
      bestVal = logits[i];
      best = i;
    }
  }
  return best;
}

/**
 * A copy of `logits` with the CTRL repetition penalty applied once per
 * distinct id of `history`: l > 0 → l / p, otherwise l · p.
 * Returns a reused scratch buffer: read it before the next call.
 */
export function penalized(logits: Float32Array, history: readonly number[], penalty: number): Float32Array {
  const out = scratchF32(logits.length);
  out.set(logits);
  const seen = new Set<number>();
  for (const id of history) {
    if (seen.has(id) || id < 0 || id >= logits.length) continue;
    seen.add(id);
    const l = logits[id];
    out[id] = l > 0 ? l / penalty : l * penalty;
  }
  return out;
}

function checkParams(p: SamplingParams, vocab: number): void {
  if (vocab === 0) throw new RangeError('cannot sample from empty logits');
  if (p.temperature !== undefined && !(p.temperature >= 0 && Number.isFinite(p.temperature))) {
    throw new RangeError(`temperature must be ≥ 0, got ${p.temperature}`);
  }
  if (p.topK !== undefined && !(Number.isInteger(p.topK) && p.topK >= 0)) {
    throw new RangeError(`top-k must be a whole number ≥ 0 (0 = off), got ${p.topK}`);
  }
  if (p.topP !== undefined && !(p.topP > 0 && p.topP <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${p.topP}`);
  if (p.repetitionPenalty !== undefined && !(p.repetitionPenalty > 0 && Number.isFinite(p.repetitionPenalty))) {
    throw new RangeError(`repetition penalty must be > 0 (1 = off), got ${p.repetitionPenalty}`);
  }
}

/**
 * Sample among the top-k `ids` (best first) after temperature and top-p,
 * the probabilities renormalised over these k.
 */
function drawTopK(src: Float32Array, ids: Int32Array, temperature: number, topP: number, rng: Rng): number {
  const n = ids.length;
  const w = scratchF64(n);
  const max = src[ids[0]];
  let total = 0;
  for (let i = 0; i < n; i++) {
    w[i] = Math.exp((src[ids[i]] - max) / temperature);
    total += w[i];
  }
  let keep = n;
  if (topP < 1) {
    let cum = 0;
    for (let i = 0; i < n; i++) {
      cum += w[i];
      if (cum >= topP * total) {
        keep = i + 1;
        break;
      }
    }
  }
  return pick(ids, w, keep, rng);
}

/**
 * Top-p without top-k. Peaked distributions: the nucleus lies in the best 64
 * (one heap pass). Flat ones: a histogram of the logits over NUCLEUS_BINS
 * bins finds the bin where the cumulative probability crosses p; only that
 * bin is sorted, which gives the cut logit. Members are the ids above the cut
 * plus, at the cut, the lowest ids needed to reach p; the draw walks them in
 * id order. O(V) passes instead of sorting the vocabulary.
 */
function drawNucleus(src: Float32Array, temperature: number, topP: number, rng: Rng): number {
  const V = src.length;
  const max = src[argmax(src)];
  const w = scratchF64(V);
  let total = 0;
  let min = max; // smallest logit with non-zero weight
  for (let i = 0; i < V; i++) {
    w[i] = Math.exp((src[i] - max) / temperature);
    total += w[i];
    if (w[i] > 0 && src[i] < min) min = src[i];
  }
  const target = topP * total;

  const few = topIds(src, Math.min(64, V));
  let cum = 0;
  for (let i = 0; i < few.length; i++) {
    cum += w[few[i]];
    if (cum >= target) return pickFrom(few, i + 1, w, rng);
  }

  // Histogram of the weighted logits: bin 0 holds the largest.
  const binW = buffers.bins.fill(0);
  const scale = max > min ? (NUCLEUS_BINS - 1) / (max - min) : 0;
  const binOf = (v: number) => Math.min(NUCLEUS_BINS - 1, Math.floor((max - v) * scale));
  let lastBin = 0;
  for (let i = 0; i < V; i++) {
    if (w[i] === 0) continue;
    const b = binOf(src[i]);
    binW[b] += w[i];
    if (b > lastBin) lastBin = b;
  }
  let bin = 0;
  cum = 0;
  while (bin < lastBin && cum + binW[bin] < target) cum += binW[bin++];

  // Sort the crossing bin (value desc, id asc) and walk it to the cut.
  const inBin: number[] = [];
  for (let i = 0; i < V; i++) if (w[i] > 0 && binOf(src[i]) === bin) inBin.push(i);
  inBin.sort((a, b) => src[b] - src[a] || a - b);
  let k = 0;
  while (k < inBin.length - 1 && cum + w[inBin[k]] < target) cum += w[inBin[k++]];
  const cut = src[inBin[k]];
  let tiesLeft = 0; // ids at exactly `cut` inside the nucleus: the lowest ones
  for (let j = 0; j <= k; j++) if (src[inBin[j]] === cut) tiesLeft++;

  let sum = 0;
  for (let i = 0; i < V; i++) {
    if (w[i] === 0) continue;
    const v = src[i];
    if (v > cut || (v === cut && tiesLeft-- > 0)) sum += w[i];
    else w[i] = 0;
  }
  const u = rng.next() * sum;
  let acc = 0;
  let last = 0;
  for (let i = 0; i < V; i++) {
    if (w[i] === 0) continue;
    acc += w[i];
    last = i;
    if (u < acc) return i;
  }
  return last;
}

/** Draw ids[i], i < n, with probability w[ids[i]] / Σ. */
function pickFrom(ids: Int32Array, n: number, w: Float64Array, rng: Rng): number {
  let total = 0;
  for (let i = 0; i < n; i++) total += w[ids[i]];
  const u = rng.next() * total;
  let cum = 0;
  for (let i = 0; i < n; i++) {
    cum += w[ids[i]];
    if (u < cum) return ids[i];
  }
  return ids[n - 1];
}

/** No filtering: one pass for the weights and their sum, one walk in id order. */
function drawFull(src: Float32Array, temperature: number, rng: Rng): number {
  const V = src.length;
  const max = src[argmax(src)];
  const w = scratchF64(V);
  let total = 0;
  for (let i = 0; i < V; i++) {
    w[i] = Math.exp((src[i] - max) / temperature);
    total += w[i];
  }
  const u = rng.next() * total;
  let cum = 0;
  let last = 0;
  for (let i = 0; i < V; i++) {
    if (w[i] === 0) continue;
    cum += w[i];
    last = i;
    if (u < cum) return i;
  }
  return last; // rounding left u just above the sum
}

/** Draw index i of ids[0..keep) with probability w[i] / Σw. */
function pick(ids: Int32Array, w: Float64Array, keep: number, rng: Rng): number {
  let total = 0;
  for (let i = 0; i < keep; i++) total += w[i];
  const u = rng.next() * total;
  let cum = 0;
  for (let i = 0; i < keep; i++) {
    cum += w[i];
    if (u < cum) return ids[i];
  }
  return ids[keep - 1];
}

/**
 * The k ids with the largest values, best first, ties → lower id first.
 * A min-heap of size k (root = worst kept) scans the values once: O(V log k).
 * Returns a reused scratch buffer of length k.
 */
export function topIds(values: Float32Array, k: number): Int32Array {
  const V = values.length;
  k = Math.min(k, V);
  const heap = scratchI32(k);
  // "a is worse than b": lower value, or equal value and higher id
  const worse = (a: number, b: number) => values[a] < values[b] || (values[a] === values[b] && a > b);
  const siftDown = (i: number, size: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && worse(heap[l], heap[m])) m = l;
      if (r < size && worse(heap[r], heap[m])) m = r;
      if (m === i) return;
      const t = heap[i];
      heap[i] = heap[m];
      heap[m] = t;
      i = m;
    }
  };
  for (let i = 0; i < k; i++) heap[i] = i;
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i, k);
  for (let i = k; i < V; i++) {
    // ids arrive in increasing order, so a tie with the root is never better
    if (values[i] > values[heap[0]]) {
      heap[0] = i;
      siftDown(0, k);
    }
  }
  // heap-sort: repeatedly move the worst to the end → best first
  for (let size = k - 1; size > 0; size--) {
    const t = heap[0];
    heap[0] = heap[size];
    heap[size] = t;
    siftDown(0, size);
  }
  return heap;
}

/** Reusable buffers, one per role so that no two live values share one. */
const NUCLEUS_BINS = 4096;
const buffers = {
  penalized: new Float32Array(0),
  bins: new Float64Array(NUCLEUS_BINS),
  weights: new Float64Array(0),
  ids: new Int32Array(0),
};

function scratchF32(n: number): Float32Array {
  if (buffers.penalized.length < n) buffers.penalized = new Float32Array(n);
  return buffers.penalized.subarray(0, n);
}
function scratchF64(n: number): Float64Array {
  if (buffers.weights.length < n) buffers.weights = new Float64Array(n);
  return buffers.weights.subarray(0, n);
}
function scratchI32(n: number): Int32Array {
  if (buffers.ids.length < n) buffers.ids = new Int32Array(n);
  return buffers.ids.subarray(0, n);
}
