import { describe, expect, it } from 'vitest';
import { Rng } from '../../../main/engine/sample/rng';
import { argmax, penalized, sampleToken, topIds } from '../../../main/engine/sample/sampler';
import type { SamplingParams } from '../../../main/engine/types';

const f32 = (xs: number[]) => Float32Array.from(xs);
const logProbs = (ps: number[]) => f32(ps.map(Math.log));

function counts(logits: Float32Array, params: SamplingParams, draws: number, seed = 1): Map<number, number> {
  const rng = new Rng(seed);
  const c = new Map<number, number>();
  for (let i = 0; i < draws; i++) {
    const id = sampleToken(logits, params, [], rng);
    c.set(id, (c.get(id) ?? 0) + 1);
  }
  return c;
}

function randomLogits(n: number, seed: number, levels = 0): Float32Array {
  const rng = new Rng(seed);
  // with `levels` > 0, values are quantised so that many ties occur
  return Float32Array.from({ length: n }, () => (levels > 0 ? Math.floor(rng.next() * levels) : rng.next() * 20 - 10));
}

describe('Rng', () => {
  it('is xoshiro128** (reference outputs from state 1,2,3,4)', () => {
    const r = Rng.fromState([1, 2, 3, 4]);
    expect(Array.from({ length: 6 }, () => r.nextU32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('same seed → same stream, different seed → different; next() in [0, 1)', () => {
    const a = new Rng(1234);
    const b = new Rng(1234);
    const c = new Rng(1235);
    const xa = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(xa);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(xa);
    for (const x of xa) expect(x >= 0 && x < 1).toBe(true);
    const saved = a.state();
    const next = a.next();
    expect(Rng.fromState(saved).next()).toBe(next);
    expect(() => new Rng(1.5)).toThrow(/integer/);
  });
});

describe('sampleToken', () => {
  it('greedy and temperature 0 break ties by the lowest id', () => {
    const l = f32([1, 5, 2, 5, 5]);
    const rng = new Rng(0);
    expect(sampleToken(l, { greedy: true }, [], rng)).toBe(1);
    expect(sampleToken(l, { temperature: 0 }, [], rng)).toBe(1);
    expect(sampleToken(f32([-3, -3]), { greedy: true }, [], rng)).toBe(0);
    expect(argmax(f32([0, -1, 7, 7]))).toBe(2);
  });

  it('top-k = 1 equals greedy', () => {
    const rng = new Rng(3);
    for (let s = 0; s < 20; s++) {
      const l = randomLogits(500, s, s % 2 ? 4 : 0);
      expect(sampleToken(l, { topK: 1, temperature: 1.3 }, [], rng)).toBe(sampleToken(l, { greedy: true }, [], rng));
    }
  });

  it('same seed gives the same sequence, a different seed a different one', () => {
    const l = randomLogits(32000, 9).map((v) => v / 4);
    const run = (seed: number, params: SamplingParams) => {
      const rng = new Rng(seed);
      return Array.from({ length: 40 }, () => sampleToken(l, params, [], rng));
    };
    for (const params of [{}, { topK: 50 }, { topP: 0.9 }, { topK: 100, topP: 0.8, temperature: 0.7 }]) {
      expect(run(42, params)).toEqual(run(42, params));
      expect(run(42, params)).not.toEqual(run(43, params));
    }
  });

  it('follows the distribution (temperature 1, no filter)', () => {
    const c = counts(logProbs([0.2, 0.8]), {}, 10000);
    expect((c.get(1) ?? 0) / 10000).toBeGreaterThan(0.77);
    expect((c.get(1) ?? 0) / 10000).toBeLessThan(0.83);
  });

  it('temperature sharpens and flattens', () => {
    const l = logProbs([0.2, 0.8]);
    // T = 0.5 squares the odds: 0.64 / (0.04 + 0.64) ≈ 0.94; T = 2: √ → 0.667
    const cold = (counts(l, { temperature: 0.5 }, 10000).get(1) ?? 0) / 10000;
    const hot = (counts(l, { temperature: 2 }, 10000).get(1) ?? 0) / 10000;
    expect(Math.abs(cold - 0.64 / 0.68)).toBeLessThan(0.02);
    expect(Math.abs(hot - 2 / 3)).toBeLessThan(0.03);
  });

  it('top-p only ever samples the nucleus', () => {
    const l = logProbs([0.05, 0.5, 0.15, 0.3]);
    // by probability: 1 (0.5), 3 (0.8), 2 (0.95), 0 (1.0)
    const c75 = counts(l, { topP: 0.75 }, 5000);
    expect([...c75.keys()].sort()).toEqual([1, 3]);
    expect((c75.get(1) ?? 0) / 5000).toBeCloseTo(0.5 / 0.8, 1);
    expect([...counts(l, { topP: 0.9 }, 5000).keys()].sort()).toEqual([1, 2, 3]);
    expect([...counts(l, { topP: 0.4 }, 500).keys()]).toEqual([1]);
    // after top-k = 2 the probabilities are renormalised: 1 → 0.625, 3 → 0.375; p = 0.6 keeps only id 1
    expect([...counts(l, { topK: 2, topP: 0.6 }, 500).keys()]).toEqual([1]);
  });

  it('top-p over a large nucleus (more than 1024 tokens) stays inside it', () => {
    // logits decrease with the id, so the nucleus is a prefix 0..m-1
    const V = 32000;
    const l = Float32Array.from({ length: V }, (_, i) => -i * 1e-4);
    const w = Array.from(l, (v) => Math.exp(v));
    const total = w.reduce((a, b) => a + b);
    let m = 0;
    for (let cum = 0; cum < 0.5 * total; m++) cum += w[m];
    expect(m).toBeGreaterThan(1024);
    const c = counts(l, { topP: 0.5 }, 1000);
    expect(Math.max(...c.keys())).toBeLessThan(m);
    expect(Math.max(...c.keys())).toBeGreaterThan(m * 0.9);
  });

  it('top-p with many ties draws only from the exact nucleus (value desc, id asc)', () => {
    for (let s = 0; s < 6; s++) {
      const l = randomLogits(3000, 100 + s, 6);
      const p = [0.3, 0.6, 0.9][s % 3];
      const order = Array.from(l.keys()).sort((a, b) => l[b] - l[a] || a - b);
      const w = order.map((i) => Math.exp(l[i] - l[order[0]]));
      const total = w.reduce((a, b) => a + b);
      const nucleus = new Set<number>();
      for (let i = 0, cum = 0; cum < p * total; i++) {
        cum += w[i];
        nucleus.add(order[i]);
      }
      const c = counts(l, { topP: p }, 400, s);
      for (const id of c.keys()) expect(nucleus.has(id), `id ${id} outside the nucleus of ${nucleus.size}`).toBe(true);
    }
  });

  it('top-k samples only the k best, ties going to lower ids', () => {
    const l = f32([3, 1, 3, 1, 3, 3, 0]);
    expect([...counts(l, { topK: 3 }, 2000).keys()].sort()).toEqual([0, 2, 4]);
  });

  it('topIds agrees with a full sort (value desc, id asc)', () => {
    for (let s = 0; s < 10; s++) {
      const l = randomLogits(300, s, s % 2 ? 5 : 0);
      const want = Array.from(l.keys()).sort((a, b) => l[b] - l[a] || a - b);
      for (const k of [1, 7, 64, 300]) expect(Array.from(topIds(l, k))).toEqual(want.slice(0, k));
    }
  });

  it('repetition penalty divides positive and multiplies negative logits, once per id', () => {
    const l = f32([2, -2, 1, 0.5]);
    expect(Array.from(penalized(l, [0, 1, 0, 0], 2))).toEqual([1, -4, 1, 0.5]);
    // 0 and 2 now tie at 1 → greedy takes 0; without the penalty 0 wins outright
    expect(sampleToken(l, { greedy: true, repetitionPenalty: 2 }, [0, 1, 0], new Rng(1))).toBe(0);
    expect(sampleToken(l, { greedy: true, repetitionPenalty: 3 }, [0, 1], new Rng(1))).toBe(2);
    expect(Array.from(l)).toEqual([2, -2, 1, 0.5]); // input untouched
  });

  it('never mutates the logits', () => {
    const l = randomLogits(1000, 5);
    const copy = Float32Array.from(l);
    const rng = new Rng(1);
    for (const p of [{ repetitionPenalty: 1.3 }, { topK: 10, repetitionPenalty: 0.7 }, { topP: 0.5, temperature: 0.3 }]) {
      sampleToken(l, p, [1, 2, 3, 999], rng);
    }
    expect(l).toEqual(copy);
  });

  it('rejects parameters with a message that says the range', () => {
    const l = f32([0, 1]);
    const rng = new Rng(1);
    expect(() => sampleToken(l, { temperature: -1 }, [], rng)).toThrow(/temperature must be ≥ 0/);
    expect(() => sampleToken(l, { topP: 0 }, [], rng)).toThrow(/top-p must be in \(0, 1\]/);
    expect(() => sampleToken(l, { topK: 1.5 }, [], rng)).toThrow(/top-k/);
    expect(() => sampleToken(l, { repetitionPenalty: 0 }, [], rng)).toThrow(/repetition penalty must be > 0/);
  });

  it('is fast for vocab 32000', () => {
    const l = randomLogits(32000, 77);
    const rng = new Rng(1);
    const history = Array.from({ length: 512 }, (_, i) => (i * 37) % 32000);
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) sampleToken(l, { topK: 50, topP: 0.9, temperature: 0.8, repetitionPenalty: 1.1 }, history, rng);
    for (let i = 0; i < 200; i++) sampleToken(l, { topP: 0.9 }, history, rng);
    const perCall = (performance.now() - t0) / 400;
    expect(perCall).toBeLessThan(10);
  });
});
