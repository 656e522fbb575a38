/**
 * The Lab API's run methods through createLab: spec checks with the engine's
 * rules, the runs store (list / get / trace / delete), reports and claims,
 * and benchmark jobs (run by a fake bench here: jobs, events, cancel).
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLab } from '../../main/lab/lab';
import { createRunsApi } from '../../main/lab/runs';
import { writeRunFolder } from '../../main/lab/record';
import type { BenchOptions, BenchResult } from '../../main/lab/bench';
import type { LabEvent } from '../../main/lab/contract';
import { makeRecord } from './runFixtures';

const tmps: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'paralab-runs-'));
  tmps.push(d);
  return d;
};
afterEach(() => tmps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('checkSpec', () => {
  const lab = createLab({ runsDir: '/nonexistent' });
  it('describes the mesh of a valid spec', async () => {
    const c = await lab.checkSpec({ model: 'synth-llama-tiny', parallel: 'dp=2,tp=2' });
    expect(c).toMatchObject({ ok: true, message: null, spec: 'dp=2,tp=2', world: 4, degrees: { dp: 2, tp: 2, pp: 1, sp: 1, ep: 1 } });
    expect(c.ranks).toHaveLength(4);
    expect(c.ranks[1]).toMatchObject({ rank: 1, coord: { dp: 0, tp: 1 }, layers: [0, 4], groups: { tp: [0, 1], dp: [1, 3] } });
    const pp = await lab.checkSpec({ model: 'synth-llama-tiny', parallel: 'pp=2' });
    expect(pp.ranks.map((r) => r.layers)).toEqual([[0, 2], [2, 4]]);
  });
  it('answers ok: false with the engine message for a spec that cannot run', async () => {
    const bad = await lab.checkSpec({ model: 'synth-llama-tiny', parallel: 'tp=16' });
    expect(bad.ok).toBe(false);
    expect(bad.message).toMatch(/tp=16 exceeds the 8 attention heads/);
    expect((await lab.checkSpec({ model: 'synth-llama-tiny', parallel: 'tp=two' })).ok).toBe(false);
    expect((await lab.checkSpec({ model: 'no-such-model', parallel: 'tp=2' })).message).toMatch(/unknown model/);
  });
});

describe('runs store', () => {
  it('lists, reads, reports, checks claims and deletes run folders', async () => {
    const dir = tmp();
    const a = makeRecord({ id: 'a-single', created: '2026-01-01T00:00:01.000Z' });
    const b = makeRecord({ id: 'b-tp2', degrees: { tp: 2 }, outputTokS: 150, created: '2026-01-01T00:00:02.000Z' });
    writeRunFolder(dir, a, []);
    writeRunFolder(dir, b, [{ name: 'process_name', ph: 'M', ts: 0, pid: 0, tid: 0, args: { name: 'rank 0' } }]);
    const lab = createLab({ runsDir: dir });
    expect((await lab.listRuns()).map((r) => r.id).sort()).toEqual(['a-single', 'b-tp2']);
    expect((await lab.getRun('b-tp2')).parallel.tp).toBe(2);
    expect(await lab.getTrace('b-tp2')).toHaveLength(1);
    const claims = await lab.claims(['a-single', 'b-tp2']);
    expect(claims.find((c) => c.strategy === 'TP' && c.aspect === 'throughput')?.verdict).toBe('borne_out');
    const md = await lab.exportReport({ runIds: ['a-single', 'b-tp2'], format: 'csv' });
    expect(md).toMatchObject({ encoding: 'utf8', mime: expect.stringContaining('text/csv') });
    expect(md.data.trimEnd().split('\r\n')).toHaveLength(3);
    const pdf = await createRunsApi({ emit: () => undefined, runsDir: dir, printPdf: async () => Buffer.from('%PDF-1.7 x') }).exportReport({ runIds: ['a-single'], format: 'pdf' });
    expect(pdf.encoding).toBe('base64');
    expect(Buffer.from(pdf.data, 'base64').subarray(0, 4).toString()).toBe('%PDF');
    await expect(lab.getRun('../etc')).rejects.toMatchObject({ code: 'bad_request' });
    await expect(lab.getRun('nope')).rejects.toMatchObject({ code: 'not_found' });
    await lab.deleteRun('a-single');
    expect(existsSync(join(dir, 'a-single'))).toBe(false);
    expect((await lab.listRuns()).map((r) => r.id)).toEqual(['b-tp2']);
  });
});

describe('benchmark jobs', () => {
  it('run in the background, publish progress and each run, and can be cancelled', async () => {
    const dir = tmp();
    const events: LabEvent[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const fakeBench = async (o: BenchOptions): Promise<BenchResult> => {
      const records = [];
      for (const [i, spec] of ['single', ...o.specs.filter((s) => s !== 'single')].entries()) {
        if (i === 1) await gate;
        if (o.signal?.aborted) throw new Error('aborted');
        o.onProgress?.({ done: i, total: 2, label: spec, message: 'measuring' });
        const r = makeRecord({ id: `job-${spec}`, spec });
        writeRunFolder(o.outDir, r, []);
        o.onRecord?.(r, join(o.outDir, r.id));
        records.push(r);
      }
      return { records, dirs: [] };
    };
    const api = createRunsApi({ emit: (e) => events.push(e), runsDir: dir, bench: fakeBench });
    await expect(api.startBench({ model: 'synth-llama-tiny', specs: [], workload: 'decode' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(api.startBench({ model: 'synth-llama-tiny', specs: ['tp=2'], workload: 'decode', batch: 0 })).rejects.toThrow(/batch must be an integer ≥ 1/);
    const job = await api.startBench({ model: 'synth-llama-tiny', specs: ['tp=2'], workload: 'decode' });
    expect(job).toMatchObject({ state: 'running', specs: ['single', 'tp=2'], done: 0, runIds: [] });
    // a second job queues behind the first (they would share the cores)
    const second = await api.startBench({ model: 'synth-llama-tiny', specs: ['tp=2'], workload: 'prefill' });
    await api.cancelBench(second.jobId);
    await expect.poll(async () => (await api.listJobs()).find((j) => j.jobId === job.jobId)?.done).toBe(1);
    release();
    await expect.poll(async () => (await api.listJobs()).find((j) => j.jobId === job.jobId)?.state).toBe('done');
    const done = (await api.listJobs()).find((j) => j.jobId === job.jobId)!;
    expect(done.runIds).toEqual(['job-single', 'job-tp=2']);
    expect((await api.listJobs()).find((j) => j.jobId === second.jobId)?.state).toBe('cancelled');
    expect(events.some((e) => e.kind === 'progress' && e.task === `bench:${job.jobId}`)).toBe(true);
    const states = events.filter((e): e is Extract<LabEvent, { kind: 'job' }> => e.kind === 'job' && e.job.jobId === job.jobId).map((e) => e.job.state);
    expect(states[0]).toBe('running');
    expect(states.at(-1)).toBe('done');
    expect((await api.listRuns()).map((r) => r.id).sort()).toEqual(['job-single', 'job-tp=2']);
    await expect(api.cancelBench('nope')).rejects.toMatchObject({ code: 'not_found' });
  });
});
