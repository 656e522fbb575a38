/**
 * Serving metric math on hand-made timelines, checked against numbers
 * worked out by hand from vLLM's definitions (see main/lab/metrics.ts).
 */
import { describe, expect, it } from 'vitest';
import { itlOf, meetsSlo, percentile, servingMetrics, stat, tpotOf, unionMs } from '../../main/lab/metrics';
import type { RequestTimeline } from '../../main/lab/metrics';

const req = (id: number, arrivalMs: number, tokenMs: number[], promptLen = 4): RequestTimeline => ({
  id,
  arrivalMs,
  firstScheduledMs: arrivalMs,
  tokenMs,
  promptLen,
  outputLen: tokenMs.length,
  finish: 'length',
});

describe('percentile and stat', () => {
  it('interpolates linearly between the closest ranks (numpy default)', () => {
    const xs = [40, 10, 30, 20]; // sorted 10 20 30 40
    expect(percentile(xs, 0)).toBe(10);
    expect(percentile(xs, 100)).toBe(40);
    expect(percentile(xs, 50)).toBe(25); // idx 1.5
    expect(percentile(xs, 90)).toBeCloseTo(37, 10); // idx 2.7 → 30 + 0.7·10
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBe(0);
  });
  it('stat gives mean and p50/p90/p99', () => {
    const s = stat([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(s.mean).toBe(6);
    expect(s.p50).toBe(6);
    expect(s.p90).toBeCloseTo(10, 10);
    expect(s.p99).toBeCloseTo(10.9, 10);
  });
});

describe('per-request latencies', () => {
  it('tpot = (e2el − ttft)/(n − 1); null below two tokens', () => {
    expect(tpotOf(req(0, 100, [150, 160, 180, 190]))).toBe(40 / 3);
    expect(tpotOf(req(0, 0, [5]))).toBeNull();
    expect(tpotOf(req(0, 0, []))).toBeNull();
  });
  it('itl lists every gap between consecutive tokens and never the first token', () => {
    expect(itlOf(req(0, 100, [150, 160, 180, 190]))).toEqual([10, 20, 10]);
    expect(itlOf(req(0, 0, [5]))).toEqual([]);
  });
  it('union of overlapping intervals', () => {
    expect(unionMs([])).toBe(0);
    expect(unionMs([{ startMs: 0, endMs: 10 }, { startMs: 5, endMs: 12 }, { startMs: 20, endMs: 25 }, { startMs: 21, endMs: 22 }])).toBe(17);
  });
});

describe('servingMetrics on a hand-made run', () => {
  // A: arrives 0, tokens at 50 60 70 80   → ttft 50, tpot 10, e2el 80, itl 10 10 10
  // B: arrives 20, tokens at 100 130      → ttft 80, tpot 30, e2el 110, itl 30
  // C: arrives 40, one token at 90        → ttft 50, (no tpot), e2el 50
  const reqs = [req(0, 0, [50, 60, 70, 80], 10), req(1, 20, [100, 130], 6), req(2, 40, [90], 8)];
  const m = servingMetrics(reqs, {
    durationMs: 200,
    prefill: [
      { startMs: 0, endMs: 40, tokens: 10 },
      { startMs: 30, endMs: 50, tokens: 6 }, // overlaps the first (another DP replica)
      { startMs: 80, endMs: 90, tokens: 8 },
    ],
    slo: { ttftMs: 60, tpotMs: 20 },
  });

  it('latency statistics', () => {
    expect(m.completed).toBe(3);
    expect(m.ttft_ms.mean).toBe(60);
    expect(m.ttft_ms.p50).toBe(50);
    expect(m.tpot_ms.mean).toBe(20); // only A and B
    expect(m.tpot_ms.p50).toBe(20);
    expect(m.itl_ms.mean).toBe(15); // 10 10 10 30
    expect(m.itl_ms.p50).toBe(10);
    expect(m.itl_ms.p90).toBeCloseTo(24, 10); // idx 2.7 of 10 10 10 30
    expect(m.e2el_ms.mean).toBeCloseTo(80, 10);
    expect(m.e2el_ms.p99).toBeCloseTo(80 + 0.98 * 30, 10);
  });
  it('throughputs over the run duration', () => {
    expect(m.total_output_tokens).toBe(7);
    expect(m.total_input_tokens).toBe(24);
    expect(m.output_tok_s).toBeCloseTo(35, 10); // 7 tokens / 0.2 s
    expect(m.request_s).toBeCloseTo(15, 10);
    // 24 prompt tokens over 60 ms of (union) prefill time
    expect(m.prefill_busy_ms).toBe(60);
    expect(m.prefill_tok_s).toBeCloseTo(400, 10);
  });
  it('goodput counts requests meeting every SLO (a 1-token request has tpot 0)', () => {
    // A: ttft 50 ≤ 60, tpot 10 ≤ 20 → good; B: ttft 80 > 60 → bad; C: ttft 50, tpot 0 → good
    expect(meetsSlo(reqs[0], { ttftMs: 60, tpotMs: 20 })).toBe(true);
    expect(meetsSlo(reqs[1], { ttftMs: 60, tpotMs: 20 })).toBe(false);
    expect(meetsSlo(reqs[2], { ttftMs: 60, tpotMs: 20 })).toBe(true);
    expect(m.goodput_req_s).toBeCloseTo(10, 10); // 2 / 0.2 s
    expect(servingMetrics(reqs, { durationMs: 200, slo: { tpotMs: 5 } }).goodput_req_s).toBeCloseTo(5, 10); // only C
    expect(servingMetrics(reqs, { durationMs: 200 }).goodput_req_s).toBeNull();
  });
  it('requests without tokens are not completed and stay out of the latencies', () => {
    const m2 = servingMetrics([...reqs, req(3, 150, [])], { durationMs: 200 });
    expect(m2.completed).toBe(3);
    expect(m2.ttft_ms.mean).toBe(60);
  });
});
