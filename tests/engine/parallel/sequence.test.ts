import { describe, expect, it } from 'vitest';
import { chunkCount, isSplit, ownerOf, runTokens, seqRuns } from '../../../main/engine/parallel/sp/layout';
import { mergePartials } from '../../../main/engine/parallel/sp/ring';

describe('sequence layout', () => {
  it('zigzag gives rank s chunks s and 2n−1−s, so causal work is balanced', () => {
    expect(seqRuns(16, 2, 'zigzag')).toEqual([
      [[0, 4], [12, 16]],
      [[4, 8], [8, 12]],
    ]);
    // attention pairs (query i sees keys ≤ i) per rank are equal for zigzag, skewed for contiguous
    const work = (runs: [number, number][]) => runs.reduce((a, [s, e]) => a + ((e * (e + 1)) / 2 - (s * (s + 1)) / 2), 0);
    const zz = seqRuns(64, 4, 'zigzag').map(work);
    expect(Math.max(...zz) / Math.min(...zz)).toBe(1);
    const naive = seqRuns(64, 4, 'contiguous').map(work);
    expect(Math.max(...naive) / Math.min(...naive)).toBeGreaterThan(5);
  });

  it('uneven lengths split into chunks one apart; every token is held exactly once', () => {
    for (const chunking of ['zigzag', 'contiguous'] as const) {
      for (const S of [8, 37, 301]) {
        const runs = seqRuns(S, 4, chunking);
        const held = runs.flat().flatMap(([s, e]) => Array.from({ length: e - s }, (_, i) => s + i));
        expect(held.sort((a, b) => a - b)).toEqual(Array.from({ length: S }, (_, i) => i));
        const sizes = runs.flat().map(([s, e]) => e - s);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        expect(runs.reduce((a, r) => a + runTokens(r), 0)).toBe(S);
      }
    }
  });

  it('steps with fewer tokens than chunks are replicated on every rank', () => {
    expect(chunkCount(4, 'zigzag')).toBe(8);
    expect(isSplit(7, 4, 'zigzag')).toBe(false);
    expect(isSplit(8, 4, 'zigzag')).toBe(true);
    expect(isSplit(1, 2, 'contiguous')).toBe(false);
    expect(seqRuns(3, 4, 'zigzag')).toEqual([[[0, 3]], [[0, 3]], [[0, 3]], [[0, 3]]]);
    expect(ownerOf(seqRuns(16, 2, 'zigzag'), 15)).toBe(0);
    expect(ownerOf(seqRuns(16, 2, 'contiguous'), 15)).toBe(1);
  });
});

describe('log-sum-exp merge of partial attention', () => {
  it('merging the softmax of two key blocks equals the softmax over all keys', () => {
    const scores = [0.3, -1.2, 2.5, 0.9, -0.4];
    const values = [
      [1, 2],
      [0, -1],
      [3, 0.5],
      [-2, 4],
      [0.25, 0.75],
    ];
    const attend = (idx: number[]) => {
      const m = Math.max(...idx.map((i) => scores[i]));
      const w = idx.map((i) => Math.exp(scores[i] - m));
      const l = w.reduce((a, b) => a + b, 0);
      const o = [0, 1].map((d) => idx.reduce((a, i, j) => a + w[j] * values[i][d], 0) / l);
      return { o, lse: m + Math.log(l) };
    };
    const full = attend([0, 1, 2, 3, 4]);
    const a = attend([0, 1]);
    const b = attend([2, 3, 4]);
    // two ring members, one row (n = 1), D = 2: each part is [o | lse]
    const all = Float32Array.from([...a.o, a.lse, ...b.o, b.lse]);
    const merged = mergePartials(all, 2, 1, 2);
    expect(merged[0]).toBeCloseTo(full.o[0], 6);
    expect(merged[1]).toBeCloseTo(full.o[1], 6);
  });
});
