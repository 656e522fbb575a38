/** The bench's pure pieces: same seed → same workload, spec order, the correctness comparison. */
import { describe, expect, it } from 'vitest';
import { balancedness, orderSpecs, workloadPrompts } from '../../main/lab/bench';
import { compareOutputs } from '../../main/engine/host/verify';

describe('bench pieces', () => {
  it('same seed gives the same prompts; another seed does not', () => {
    const a = workloadPrompts(3, 16, 512, 7);
    expect(a).toHaveLength(3);
    expect(a.every((p) => p.length === 16 && p.every((t) => t >= 4 && t < 512))).toBe(true);
    expect(workloadPrompts(3, 16, 512, 7)).toEqual(a);
    expect(workloadPrompts(3, 16, 512, 8)).not.toEqual(a);
  });

  it('runs single first, canonical specs, no duplicates', () => {
    expect(orderSpecs(['tp=2', 'TP=2', 'pp=2 , dp=2'])).toEqual(['single', 'tp=2', 'dp=2,pp=2']);
    expect(orderSpecs(['tp=2', 'single'])).toEqual(['single', 'tp=2']);
    expect(() => orderSpecs(['tp=x'])).toThrow();
  });

  it('compares tokens and logits up to the first mismatch', () => {
    const l = (...x: number[]) => Float32Array.from(x);
    const ref = { tokens: [1, 2, 3], logits: [l(0, 1), l(1, 0), l(0.5, 0.5)] };
    expect(compareOutputs(ref, { tokens: [1, 2, 3], logits: [l(0, 1.0001), l(1, 0), l(0.5, 0.5)] })).toEqual({ tokens_equal: true, first_mismatch: null, max_abs_logit_diff: expect.closeTo(1e-4, 6) });
    const bad = compareOutputs(ref, { tokens: [1, 9, 3], logits: [l(0, 1), l(0.2, 0), l(9, 9)] });
    expect(bad).toMatchObject({ tokens_equal: false, first_mismatch: 1 });
    expect(bad.max_abs_logit_diff).toBeCloseTo(0.8, 6); // position 2 (after the mismatch) is not compared
    expect(compareOutputs(ref, { tokens: [1, 2], logits: ref.logits.slice(0, 2) }).first_mismatch).toBe(2);
  });

  it('expert balancedness is max ÷ mean', () => {
    expect(balancedness([2, 2, 2, 2])).toBe(1);
    expect(balancedness([4, 0, 2, 2])).toBe(2);
    expect(balancedness([0, 0])).toBe(0);
  });
});
