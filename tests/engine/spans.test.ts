import { describe, expect, it } from 'vitest';
import { toSpans } from '../../main/engine/rank/spans';

describe('rank spans', () => {
  it('splits a communication span into the wait for a late peer and the transfer', () => {
    const spans = toSpans(
      [
        { segment: 'attn0', start: 100, ms: 5 },
        { segment: 'all_reduce after attn0', start: 105, ms: 4, cat: 'comm' },
        { segment: 'waiting for the previous stage', start: 109, ms: 2, cat: 'bubble' },
      ],
      // one collective inside the comm span (105–109) that waited 3 ms, one outside it
      [
        { end: 109, ms: 4, waitMs: 3 },
        { end: 50, ms: 1, waitMs: 1 },
      ],
    );
    expect(spans.map((s) => [s.name, s.cat])).toEqual([
      ['attn0', 'compute'],
      ['all_reduce after attn0', 'wait'],
      ['all_reduce after attn0', 'comm'],
      ['waiting for the previous stage', 'bubble'],
    ]);
    const [, wait, comm] = spans;
    expect(wait.dur).toBeCloseTo(3000, 6);
    expect(comm.dur).toBeCloseTo(1000, 6);
    expect(comm.ts - wait.ts).toBeCloseTo(3000, 3);
  });

  it('never lets the waits of overlapping calls exceed the span', () => {
    const spans = toSpans([{ segment: 'ring pass', start: 0, ms: 2, cat: 'comm' }], [
      { end: 2, ms: 2, waitMs: 1.5 },
      { end: 2, ms: 2, waitMs: 1.5 },
    ]);
    expect(spans.map((s) => s.cat)).toEqual(['wait', 'comm']);
    expect(spans[0].dur).toBeCloseTo(2000, 6);
    expect(spans[1].dur).toBeCloseTo(0, 6);
  });
});
