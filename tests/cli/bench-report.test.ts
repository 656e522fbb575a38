/**
 * End to end through the real command line: `lab bench` of `single;tp=2` on
 * synth-llama-tiny (real rank processes) writes two run folders whose run.json
 * validate against the repo's JSON Schema (checked here with ajv directly) and
 * whose trace.json names one process per rank; `lab report` then produces
 * every format: the HTML opens in Debian's Chromium with no console error and
 * no request leaving the file, the PDF has pages, the CSV one row per run, the
 * JSON a claims row for every strategy.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import { chromium } from 'playwright-core';
import { lab } from '../support/cli';
import { ensurePreset } from '../../main/engine/model/synth';
import { CHROMIUM_FLAGS } from '../../main/lab/report/pdf';
import schema from '../../main/lab/schema/run.schema.json';
import type { RunRecord, TraceEvent } from '../../main/lab/contract';

const CHROMIUM = '/usr/bin/chromium';
const noChromium = !existsSync(CHROMIUM) && !process.env['CI'];
if (noChromium) console.warn(`bench-report: the Chromium parts are skipped: ${CHROMIUM} is missing (apt-get install -y chromium); in CI it must be there`);

let tmp: string;
let runsDir: string;
let runs: RunRecord[];
const env = () => ({ PARALAB_CACHE: path.join(tmp, 'cache'), PARALAB_RUNS: path.join(tmp, 'default-runs') });

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'paralab-bench-'));
  runsDir = path.join(tmp, 'runs');
  await ensurePreset('synth-llama-tiny', { cacheDir: path.join(tmp, 'cache') });
  const r = await lab(['bench', '--model', 'synth-llama-tiny', '--parallel', 'single;tp=2', '--workload', 'decode', '--prompt-len', '8', '--output-len', '4', '--batch', '2', '--reps', '2', '--verify', '--out', runsDir, '--json'], env(), 240_000);
  if (r.code !== 0) throw new Error(`lab bench failed: ${r.stderr}`);
  runs = (JSON.parse(r.stdout) as { runs: RunRecord[] }).runs;
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('lab bench', () => {
  it('writes one folder per spec with a run.json valid against the schema and a trace with one process per rank', () => {
    expect(runs.map((r) => r.parallel.spec)).toEqual(['single', 'tp=2']);
    const folders = readdirSync(runsDir).sort();
    expect(folders).toHaveLength(2);
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    for (const f of folders) {
      const record = JSON.parse(readFileSync(path.join(runsDir, f, 'run.json'), 'utf8')) as RunRecord;
      expect(validate(record), JSON.stringify(validate.errors)).toBe(true);
      expect(record.id).toBe(f);
      const trace = JSON.parse(readFileSync(path.join(runsDir, f, 'trace.json'), 'utf8')) as TraceEvent[];
      const procs = trace.filter((e) => e.ph === 'M' && e.name === 'process_name');
      expect(procs.map((e) => e.pid).sort()).toEqual(Array.from({ length: record.parallel.world }, (_, i) => i));
      for (let r = 0; r < record.parallel.world; r++) expect(trace.some((e) => e.ph === 'X' && e.pid === r && e.cat === 'compute' && (e.dur ?? 0) > 0)).toBe(true);
    }
  });

  it('records measured numbers: metrics, memory and time per rank, the ledger at its closed form, correctness', () => {
    const [single, tp] = runs;
    for (const r of runs) {
      expect(r.metrics.ttft_ms.p50).toBeGreaterThan(0);
      expect(r.metrics.tpot_ms.p50).toBeGreaterThan(0);
      expect(r.metrics.output_tok_s).toBeGreaterThan(0);
      expect(r.metrics['completed']).toBe(4); // 2 reps × batch 2, every sequence a request
      expect(r.metrics['total_output_tokens']).toBe(16);
      expect(r.device.versions).toMatchObject({ onnxruntime_node: expect.stringMatching(/^\d+\.\d+/) });
      for (const k of r.ranks) {
        expect(k.memory!.weights_bytes).toBeGreaterThan(0);
        expect(k.memory!.rss_peak_bytes).toBeGreaterThan(k.memory!.weights_bytes);
        expect(k.time!.compute_ms).toBeGreaterThan(0);
      }
      expect(r.correctness).toMatchObject({ checked: true, tokens_equal: true, passed: true });
    }
    expect(single.workload).toEqual({ ...tp.workload }); // same seeded work
    expect(single.comm).toEqual([]);
    // TP halves the layer weights; the measured all-reduce traffic is the closed form
    expect(tp.ranks[0].memory!.weights_bytes).toBeLessThan(single.ranks[0].memory!.weights_bytes);
    const ar = tp.comm.filter((c) => c.op === 'all_reduce');
    expect(ar).toHaveLength(2);
    for (const c of ar) {
      expect(c.count).toBeGreaterThan(0);
      expect(c.count).toBe(c.expected_count);
      expect(c.bytes_sent).toBe(c.expected_bytes_sent);
    }
    expect(tp.correctness.max_abs_logit_diff).toBeLessThanOrEqual(1e-3);
  });
});

describe('lab bench --workload serving', () => {
  it('runs Poisson requests on single;tp=2: vLLM metrics from request timelines, one process per rank', async () => {
    const out = path.join(tmp, 'serving-runs');
    const r = await lab(['bench', '--model', 'synth-llama-tiny', '--parallel', 'single;tp=2', '--workload', 'serving', '--requests', '6', '--rate', '50', '--prompt-len', '6', '--output-len', '4', '--out', out, '--json', '--slo-ttft', '10000'], env(), 240_000);
    expect(r.code, r.stderr).toBe(0);
    const got = (JSON.parse(r.stdout) as { runs: RunRecord[] }).runs;
    expect(got.map((x) => x.parallel.spec)).toEqual(['single', 'tp=2']);
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    for (const rec of got) {
      expect(validate(rec), JSON.stringify(validate.errors)).toBe(true);
      expect(rec.workload).toMatchObject({ kind: 'serving', requests: 6, rate: 50 });
      expect(rec.metrics['completed']).toBe(6);
      expect(rec.metrics.request_s).toBeGreaterThan(0);
      expect(rec.metrics.ttft_ms.p99).toBeGreaterThanOrEqual(rec.metrics.ttft_ms.p50);
      expect(rec.metrics['goodput_req_s']).toBeGreaterThan(0);
      const trace = JSON.parse(readFileSync(path.join(out, rec.id, 'trace.json'), 'utf8')) as TraceEvent[];
      const pids = trace.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => e.pid);
      for (let k = 0; k < rec.parallel.world; k++) expect(pids).toContain(k);
      expect(trace.filter((e) => e.ph === 'X' && e.cat === 'request')).toHaveLength(6); // the host process: one span per request
      expect(trace.some((e) => e.ph === 'X' && e.cat === 'scheduler.prefill')).toBe(true); // and the scheduler's steps
      expect(rec.workload['scheduler']).toMatchObject({ mode: expect.any(String) });
    }
  });
});

describe('lab report', () => {
  const out = (f: string) => path.join(tmp, `report.${f}`);

  it('writes md, csv and json: one CSV row per run, a claims row for every strategy', async () => {
    for (const f of ['md', 'csv', 'json']) {
      const r = await lab(['report', runsDir, '--format', f, '--out', out(f)], env());
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(out(f));
    }
    const csv = readFileSync(out('csv'), 'utf8').trimEnd().split('\r\n');
    expect(csv).toHaveLength(1 + 2);
    expect(csv[0].startsWith('id,label,')).toBe(true);
    const json = JSON.parse(readFileSync(out('json'), 'utf8')) as { runs: RunRecord[]; claims: { strategy: string; verdict: string }[] };
    expect(json.runs).toHaveLength(2);
    for (const s of ['DP', 'PP', 'TP', 'SP', 'EP']) expect(json.claims.filter((c) => c.strategy === s).length).toBeGreaterThan(0);
    // tp=2 was measured: its rows have a verdict; DP / PP / SP / EP were not run
    expect(json.claims.filter((c) => c.strategy === 'TP').every((c) => c.verdict !== 'not_measured')).toBe(true);
    expect(json.claims.filter((c) => c.strategy !== 'TP').every((c) => c.verdict === 'not_measured')).toBe(true);
    expect(readFileSync(out('md'), 'utf8')).toContain('| TP |');
    const bad = await lab(['report', path.join(tmp, 'nowhere'), '--format', 'md'], env());
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/does not exist/);
  });

  it.skipIf(noChromium)('HTML opens in Chromium with no console error and no request leaving the file; the PDF has pages', async () => {
    for (const f of ['html', 'pdf']) {
      const r = await lab(['report', ...readdirSync(runsDir).map((d) => path.join(runsDir, d)), '--format', f, '--out', out(f), '--lang', 'zh-CN'], env());
      expect(r.code, r.stderr).toBe(0);
    }
    const pdf = readFileSync(out('pdf'));
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const pages = pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? [];
    expect(pages.length).toBeGreaterThan(0);

    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      const fileUrl = `file://${out('html')}`;
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url === fileUrl) return route.continue();
        requests.push(url);
        return route.abort();
      });
      await page.goto(fileUrl, { waitUntil: 'load' });
      expect(await page.title()).toBe('ParaLab 实验报告');
      expect(await page.locator('svg').count()).toBeGreaterThanOrEqual(6);
      const box = await page.locator('.chart svg').first().boundingBox();
      expect(box!.width).toBeGreaterThan(300);
      expect(await page.locator('text=结论检验').count()).toBeGreaterThan(0);
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
