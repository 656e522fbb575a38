/** CLI progress: quiet for the first second, specs / requests done, ETA, --quiet. */
import { describe, expect, it } from 'vitest';
import { Progress, etaSeconds, formatDuration, fractionDone, progressLine } from '../../main/cli/progress';

describe('progress', () => {
  it('fraction and ETA from specs done and requests of the current spec', () => {
    expect(fractionDone({ done: 1, total: 4, label: 'x', message: '' })).toBe(0.25);
    expect(fractionDone({ done: 1, total: 4, label: 'x', message: '', requestsDone: 5, requestsTotal: 10 })).toBe(0.375);
    expect(etaSeconds(10_000, 0.25)).toBe(30);
    expect(etaSeconds(10_000, 0)).toBeNull();
    expect(formatDuration(75)).toBe('1 min 15 s');
    expect(progressLine({ done: 1, total: 2, label: 'tp=2', message: 'm', requestsDone: 3, requestsTotal: 6 }, 30_000)).toBe('[1/2 specs] · tp=2 · requests 3/6 · 30 s elapsed · ETA 10 s'); // (1 + 3/6) of 2 specs in 30 s → 10 s left
  });

  it('prints nothing in the first second, throttles, always shows a finished spec, and --quiet silences it', () => {
    let now = 0;
    const out: string[] = [];
    const p = new Progress({ stream: { write: (s: string) => out.push(s) }, now: () => now });
    p.update({ done: 0, total: 2, label: 'single', message: 'warm-up' });
    expect(out).toEqual([]);
    now = 1500;
    p.update({ done: 0, total: 2, label: 'single', message: 'measuring' });
    now = 1600;
    p.update({ done: 0, total: 2, label: 'single', message: 'still' }); // within the interval: skipped
    p.update({ done: 1, total: 2, label: 'single', message: 'done' }); // a spec finished: shown
    expect(out).toHaveLength(2);
    expect(out[1]).toContain('[1/2 specs]');
    expect(out[1]).toContain('ETA');
    const quiet: string[] = [];
    const q = new Progress({ quiet: true, stream: { write: (s: string) => quiet.push(s) }, now: () => (now += 5000) });
    q.update({ done: 1, total: 2, label: 'x', message: '' });
    expect(quiet).toEqual([]);
  });
});
