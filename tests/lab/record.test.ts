/** Run records: the JSON Schema, the pieces a record is built from, atomic folders. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkRecord, commRows, listRunFolders, rankTime, readRunFolder, readTrace, summarize, writeRunFolder } from '../../main/lab/record';
import { makeRecord } from './runFixtures';

const tmps: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'paralab-rec-'));
  tmps.push(d);
  return d;
};
afterEach(() => tmps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('run.json schema', () => {
  it('accepts a complete record and names what is missing or wrong', () => {
    expect(checkRecord(makeRecord({ verified: true }))).toEqual([]);
    const r = makeRecord() as unknown as { metrics: { ttft_ms: Record<string, number> }; ranks: { memory: Record<string, number> }[] };
    delete r.metrics.ttft_ms['p50'];
    r.ranks[0].memory['rss_peak_bytes'] = -1;
    const problems = checkRecord(r);
    expect(problems.join('\n')).toContain("/metrics/ttft_ms: must have required property 'p50'");
    expect(problems.join('\n')).toContain('/ranks/0/memory/rss_peak_bytes');
    // a checked correctness must carry its numbers
    const c = makeRecord();
    c.correctness = { checked: true, note: 'x' };
    expect(checkRecord(c).join('\n')).toContain('tokens_equal');
    expect(checkRecord({ ...makeRecord(), schema: 'paralab.run/2' }).join('\n')).toContain('/schema');
  });
});

describe('record pieces', () => {
  it('comm rows: measured beside the closed form, GB/s over the transfer time only', () => {
    const rows = commRows(
      [{ all_reduce: { count: 4, bytesSent: 3e6, bytesRecv: 3e6, ms: 4, waitMs: 1 } }, null],
      [{ all_reduce: { count: 4, bytesSent: 3e6, bytesRecv: 3e6 } }, { send: { count: 2, bytesSent: 100, bytesRecv: 0 } }],
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ rank: 0, op: 'all_reduce', count: 4, expected_count: 4, bytes_sent: 3e6, expected_bytes_sent: 3e6, wait_ms: 1 });
    expect(rows[0].gb_s).toBeCloseTo(6e6 / (3 * 1e6), 9); // 6 MB in 3 ms = 2 GB/s
    expect(rows[1]).toMatchObject({ rank: 1, op: 'send', count: 0, expected_count: 2, gb_s: 0 });
  });

  it('time split: the ledger wait moves out of comm; a recv wait is the bubble already', () => {
    const t = rankTime({ steps: 3, computeMs: 10, commMs: 5, bubbleMs: 2 }, { all_reduce: { count: 1, bytesSent: 1, bytesRecv: 1, ms: 4, waitMs: 1.5 }, recv: { count: 1, bytesSent: 0, bytesRecv: 1, ms: 2, waitMs: 2 } });
    expect(t).toEqual({ steps: 3, compute_ms: 10, comm_ms: 3.5, wait_ms: 1.5, bubble_ms: 2 });
  });

  it('summary line', () => {
    const s = summarize(makeRecord({ degrees: { tp: 2 }, verified: true, tpotMs: 7 }));
    expect(s).toMatchObject({ spec: 'tp=2', world: 2, workload: 'decode', tpot_p50_ms: 7, correctness: 'pass' });
  });
});

describe('run folders', () => {
  it('are written whole (run.json + trace.json), read back validated, listed newest first', () => {
    const dir = tmp();
    const a = makeRecord({ id: 'run-a' });
    const b = makeRecord({ id: 'run-b' });
    writeRunFolder(dir, a, [{ name: 'process_name', ph: 'M', ts: 0, pid: 0, tid: 0, args: { name: 'rank 0' } }]);
    writeRunFolder(dir, b, []);
    expect(readdirSync(dir).sort()).toEqual(['run-a', 'run-b']); // no temporary left behind
    expect(readdirSync(join(dir, 'run-a')).sort()).toEqual(['run.json', 'trace.json']);
    expect(readRunFolder(join(dir, 'run-a'))).toEqual(a);
    expect(readTrace(join(dir, 'run-a'))).toHaveLength(1);
    // a half-written temporary (a crash mid-write) and foreign folders are not runs
    mkdirSync(join(dir, '.run-c.123.tmp'));
    writeFileSync(join(dir, '.run-c.123.tmp', 'run.json'), '{"schema":');
    mkdirSync(join(dir, 'notes'));
    expect(listRunFolders(dir).map((d) => d.slice(dir.length + 1)).sort()).toEqual(['run-a', 'run-b']);
    // rewriting replaces the folder
    writeRunFolder(dir, { ...a, label: 'again' }, []);
    expect(JSON.parse(readFileSync(join(dir, 'run-a', 'run.json'), 'utf8')).label).toBe('again');
    expect(readTrace(join(dir, 'run-a'))).toEqual([]);
  });

  it('refuses a record that does not match the schema, saying which file', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'bad'));
    writeFileSync(join(dir, 'bad', 'run.json'), JSON.stringify({ schema: 'paralab.run/1', id: 'bad' }));
    expect(() => readRunFolder(join(dir, 'bad'))).toThrow(/bad[/\\]run\.json does not match schema paralab\.run\/1/);
    expect(() => readRunFolder(join(dir, 'none'))).toThrow(/not found/);
    expect(() => writeRunFolder(dir, { ...makeRecord(), id: '../escape' }, [])).toThrow(/not a run id/);
    expect(existsSync(join(dir, '..', 'escape'))).toBe(false);
  });
});
