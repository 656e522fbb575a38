/**
 * The serving workload generator: deterministic per seed, Poisson arrivals
 * at the asked rate, lengths fixed or uniform in a range, ids in vocabulary.
 */
import { describe, expect, it } from 'vitest';
import { makeWorkload } from '../../main/lab/serving';

describe('makeWorkload', () => {
  it('same seed → same workload; another seed → another one', () => {
    const o = { requests: 20, rate: 4, promptLen: 8, outputLen: 5, seed: 7 };
    expect(makeWorkload(o, 512)).toEqual(makeWorkload(o, 512));
    expect(makeWorkload({ ...o, seed: 8 }, 512)).not.toEqual(makeWorkload(o, 512));
  });

  it('rate 0 puts every arrival at t0; arrivals never go back in time', () => {
    expect(makeWorkload({ requests: 5, rate: 0, promptLen: 3, outputLen: 2, seed: 1 }, 512).map((r) => r.arrivalMs)).toEqual([0, 0, 0, 0, 0]);
    const w = makeWorkload({ requests: 50, rate: 10, promptLen: 3, outputLen: 2, seed: 1 }, 512);
    expect(w[0].arrivalMs).toBe(0);
    for (let i = 1; i < w.length; i++) expect(w[i].arrivalMs).toBeGreaterThan(w[i - 1].arrivalMs);
  });

  it('gaps are exponential with mean 1/rate (Poisson process)', () => {
    const rate = 5;
    const w = makeWorkload({ requests: 4001, rate, promptLen: 1, outputLen: 1, seed: 3 }, 512);
    const gaps = w.slice(1).map((r, i) => r.arrivalMs - w[i].arrivalMs);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    expect(mean).toBeGreaterThan(190); // 200 ms ± ~5 % for 4000 samples
    expect(mean).toBeLessThan(210);
    // Exponential: P(gap > mean) = e^-1 ≈ 0.368
    const over = gaps.filter((g) => g > 200).length / gaps.length;
    expect(over).toBeGreaterThan(0.34);
    expect(over).toBeLessThan(0.4);
  });

  it('fixed or uniform lengths, ids inside the vocabulary above the special ids, arrivals independent of lengths', () => {
    const fixed = makeWorkload({ requests: 30, rate: 2, promptLen: 6, outputLen: 4, seed: 2 }, 100);
    expect(fixed.every((r) => r.prompt.length === 6 && r.outputLen === 4)).toBe(true);
    expect(fixed.every((r) => r.prompt.every((t) => Number.isInteger(t) && t >= 4 && t < 100))).toBe(true);
    const ranged = makeWorkload({ requests: 300, rate: 2, promptLen: 3, promptLenMax: 9, outputLen: 1, outputLenMax: 5, seed: 2 }, 100);
    const pl = new Set(ranged.map((r) => r.prompt.length));
    const ol = new Set(ranged.map((r) => r.outputLen));
    expect([...pl].sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect([...ol].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(ranged.slice(0, 30).map((r) => r.arrivalMs)).toEqual(fixed.map((r) => r.arrivalMs));
  });

  it('refuses impossible options with a message saying what to change', () => {
    expect(() => makeWorkload({ requests: 0, rate: 1, promptLen: 1, outputLen: 1, seed: 0 }, 10)).toThrow(/requests/);
    expect(() => makeWorkload({ requests: 1, rate: -1, promptLen: 1, outputLen: 1, seed: 0 }, 10)).toThrow(/rate/);
    expect(() => makeWorkload({ requests: 1, rate: 1, promptLen: 0, outputLen: 1, seed: 0 }, 10)).toThrow(/prompt length/);
  });
});
