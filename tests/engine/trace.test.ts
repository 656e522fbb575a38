/**
 * Rank timelines: with engine.meter.tracing on, every rank reports a span per
 * segment run and per collective, on one epoch-based clock.
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../../main/engine/host/engine';

describe('rank spans', () => {
  it('tp=2 and sp=2 ring: compute and comm spans on every rank, ordered in time, within the run', async () => {
    for (const parallel of ['tp=2', 'pp=2', 'sp=2,sp_impl=ring']) {
      const e = await Engine.start({ model: 'synth-llama-tiny', parallel, threadsPerRank: 1 });
      try {
        e.meter.tracing = true;
        const before = (performance.timeOrigin + performance.now()) * 1000;
        await e.generate([Array.from({ length: 20 }, (_, i) => i + 3)], { maxNewTokens: 3, ignoreEos: true });
        const after = (performance.timeOrigin + performance.now()) * 1000;
        const spans = e.meter.drainSpans();
        expect(spans).toHaveLength(2);
        for (const [rank, list] of spans.entries()) {
          expect(list.length, `${parallel} rank ${rank}`).toBeGreaterThan(3);
          expect(list.some((s) => s.cat === 'compute')).toBe(true);
          expect(list.some((s) => s.cat === 'comm' || s.cat === 'wait' || s.cat === 'bubble'), `${parallel} rank ${rank} communicates`).toBe(true);
          for (const s of list) {
            expect(s.ts).toBeGreaterThanOrEqual(before);
            // two processes' epoch clocks (timeOrigin + now) agree to a few ms, not better, on a loaded machine
            expect(s.ts + s.dur).toBeLessThanOrEqual(after + 5000);
            expect(s.dur).toBeGreaterThanOrEqual(0);
          }
        }
        expect(e.meter.drainSpans().every((l) => l.length === 0)).toBe(true);
        expect(e.meter.kvBytes().every((b) => b > 0)).toBe(true);
      } finally {
        await e.close();
      }
    }
  });
});
