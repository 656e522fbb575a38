/** trace.json: one process per rank, named; spans rebuilt from per-step totals when the engine has none. */
import { describe, expect, it } from 'vitest';
import { StepRecorder, buildTrace, tracedProcesses } from '../../main/lab/trace';

describe('trace', () => {
  it('names one process per rank and one for the host', () => {
    const ev = buildTrace({
      ranks: [
        { label: 'rank 0', spans: [{ name: 'attn', cat: 'compute', ts: 1_000_100, dur: 50 }] },
        { label: 'rank 1', spans: [{ name: 'all_reduce', cat: 'comm', ts: 1_000_000, dur: 20 }] },
      ],
      host: [{ name: 'req 0', cat: 'request', ts: 1_000_050, dur: 10, tid: 1 }],
      source: 'engine',
    });
    const procs = tracedProcesses(ev);
    expect([...procs.keys()].sort()).toEqual([0, 1, 2]);
    expect(procs.get(0)).toBe('rank 0');
    expect(procs.get(2)).toContain('host');
    const x = ev.filter((e) => e.ph === 'X');
    // relative to the earliest span, µs
    expect(x.find((e) => e.name === 'all_reduce')).toMatchObject({ pid: 1, ts: 0, dur: 20 });
    expect(x.find((e) => e.name === 'attn')).toMatchObject({ pid: 0, ts: 100, dur: 50 });
    expect(x.find((e) => e.name === 'req 0')).toMatchObject({ pid: 2, ts: 50, tid: 1 });
    expect(ev.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === 2 && e.tid === 1)?.args).toEqual({ name: 'request 0' });
  });

  it('rebuilds per-step spans from running totals', () => {
    const rec = new StepRecorder(2);
    const t = [
      { steps: 0, computeMs: 0, commMs: 0, bubbleMs: 0 },
      { steps: 0, computeMs: 0, commMs: 0, bubbleMs: 0 },
    ];
    rec.rebase(t);
    t[0] = { steps: 1, computeMs: 3, commMs: 1, bubbleMs: 0 };
    t[1] = { steps: 1, computeMs: 2, commMs: 0.5, bubbleMs: 1 };
    rec.sample(t, 10_000);
    rec.sample(t, 11_000); // no new step: nothing added
    const r0 = rec.spans[0];
    expect(r0.map((s) => s.cat)).toEqual(['step', 'compute', 'comm']);
    expect(r0[0]).toMatchObject({ ts: 6000, dur: 4000 });
    expect(r0[1]).toMatchObject({ ts: 6000, dur: 3000 });
    expect(r0[2]).toMatchObject({ ts: 9000, dur: 1000 });
    expect(rec.spans[1].map((s) => s.cat)).toEqual(['step', 'bubble', 'compute', 'comm']);
    // a second step cannot start before the first ended: it is squeezed into the time since
    t[0] = { steps: 2, computeMs: 8, commMs: 1, bubbleMs: 0 };
    rec.sample(t, 12_000);
    const step2 = rec.spans[0].filter((s) => s.cat === 'step')[1];
    expect(step2).toMatchObject({ ts: 10_000, dur: 2000 });
    expect(rec.spans[0].at(-1)).toMatchObject({ cat: 'compute', dur: 2000 });
    expect(rec.spans[0].every((s) => s.args?.['reconstructed'] === true)).toBe(true);
  });
});
