/**
 * A rank's step timings as trace spans (trace.json, the per-rank timeline).
 */
import type { SegmentTiming } from '../runtime/stream';
import type { CallTiming } from '../comm/ledger';
import type { RankSpan } from './protocol';

/**
 * Timings → trace spans on the epoch clock. A communication span is split in
 * two where the ledger saw its calls wait for a late peer: first the wait
 * (arrival skew), then the transfer.
 */
export function toSpans(timings: SegmentTiming[], calls: CallTiming[]): RankSpan[] {
  const us = (ms: number) => (performance.timeOrigin + ms) * 1000;
  const out: RankSpan[] = [];
  for (const t of timings) {
    const cat = t.cat ?? 'compute';
    let wait = 0;
    if (cat === 'comm') {
      const end = t.start + t.ms;
      for (const c of calls) if (c.end - c.ms >= t.start - 0.05 && c.end <= end + 0.05) wait += c.waitMs;
      wait = Math.min(wait, t.ms);
    }
    if (wait > 0) out.push({ name: t.segment, cat: 'wait', ts: us(t.start), dur: wait * 1000 });
    out.push({ name: t.segment, cat, ts: us(t.start + wait), dur: (t.ms - wait) * 1000 });
  }
  return out;
}
