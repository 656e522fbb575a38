/**
 * End to end through the web host in Debian's Chromium, with the real lab and
 * real rank processes (synth-llama-tiny, temporary cache and runs folders):
 *   1. the API refuses requests without the launch token;
 *   2. every view loads with no console error, and the language switch relabels them;
 *   3. a tp=2 benchmark runs from the Lab view (progress, then done), and
 *      Compare's charts draw real pixels of their series colours;
 *   4. the chat streams tokens under tp=2 and shows TTFT / inter-token latency and ranks;
 *   5. Reports exports the runs (a real browser download) and shows the claims.
 * Screenshots per view go to test-artifacts/ (lab.png, lab-mesh.png, compare.png, compare-dark.png, chat.png,
 * reports.png, learn.png, learn-zh.png; models.png comes from models.e2e).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { createLab } from '../../main/lab/lab';
import { closeAllChats } from '../../main/lab/chat';
import { startWebHost, type WebHost } from '../../main/server';
import { RENDERER_OUT, ensureRendererBuilt } from './build';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(__dirname, '../../test-artifacts');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const skip = !existsSync(CHROMIUM) && !process.env['CI'];
if (skip) console.warn(`lab.e2e skipped: ${CHROMIUM} is missing (apt-get install -y chromium); in CI it must be there`);

/** The chart series colours, read from the renderer's palette (the node test project cannot import renderer files). */
function seriesColours(): Record<string, string> {
  const text = readFileSync(resolve(__dirname, '../../renderer/src/charts/palette.ts'), 'utf8');
  const block = text.slice(text.indexOf('export const SERIES'), text.indexOf('} as const'));
  return Object.fromEntries([...block.matchAll(/(\w+): '(#[0-9a-f]{6})'/g)].map((m) => [m[1], m[2]]));
}
const SERIES = seriesColours();

/** Pixels of a canvas within a small distance of a colour (inside the page). */
async function colourPixels(page: Page, selector: string, hex: string): Promise<number> {
  return page.$eval(
    `${selector} canvas`,
    (c, hex) => {
      type Canvas2D = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } };
      const canvas = c as unknown as Canvas2D;
      const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
      const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 24) n++;
      return n;
    },
    hex,
  );
}

function rawStatus(url: string): Promise<number> {
  return new Promise((ok, fail) => request(url, (res) => (res.resume(), ok(res.statusCode ?? 0))).on('error', fail).end());
}

describe.skipIf(skip)('the lab UI in Chromium through the web host', () => {
  const envKeys = ['PARALAB_CACHE', 'PARALAB_MODELS', 'HF_HUB_CACHE', 'PARALAB_RUNS'] as const;
  const savedEnv = envKeys.map((k) => process.env[k]);
  let tmp: string;
  let host: WebHost;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];
  /** The views scroll inside the shell, so the viewport grows to the view's height for the picture. */
  const shot = async (name: string) => {
    const h = await page.$eval('.content', (el) => el.scrollHeight);
    await page.setViewportSize({ width: 1360, height: Math.max(860, h + 40) });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(ARTIFACTS, name) });
    await page.setViewportSize({ width: 1360, height: 860 });
  };
  const go = async (view: string) => {
    await page.click(`[data-testid="nav-${view}"]`);
    await page.waitForTimeout(150);
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: CI must install chromium (apt-get install -y chromium)`);
    await ensureRendererBuilt();
    tmp = mkdtempSync(join(tmpdir(), 'paralab-e2e-lab-'));
    for (const d of ['cache', 'hf', 'profile', 'runs']) mkdirSync(join(tmp, d));
    process.env['PARALAB_CACHE'] = join(tmp, 'cache');
    process.env['HF_HUB_CACHE'] = join(tmp, 'hf');
    process.env['PARALAB_RUNS'] = join(tmp, 'runs');
    delete process.env['PARALAB_MODELS'];
    mkdirSync(ARTIFACTS, { recursive: true });
    host = await startWebHost({ lab: createLab(), staticDir: RENDERER_OUT });
    context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1360, height: 860 },
      colorScheme: 'light',
      locale: 'en-US',
      acceptDownloads: true,
    });
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  afterAll(async () => {
    await context?.close();
    await host?.close();
    await closeAllChats();
    envKeys.forEach((k, i) => (savedEnv[i] === undefined ? delete process.env[k] : (process.env[k] = savedEnv[i])));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses the page and the API without the launch token', async () => {
    expect(await rawStatus(host.url)).toBe(401);
    const status = await new Promise<number>((ok) => {
      const ws = new WebSocket(`${host.url.replace('http', 'ws')}api`);
      ws.on('unexpected-response', (_req, res) => ok(res.statusCode ?? 0));
      ws.on('open', () => (ws.close(), ok(101)));
      ws.on('error', () => ok(-1));
    });
    expect(status).toBe(401);
  });

  it('loads every view with no console error; the language switch relabels them', async () => {
    await page.goto(host.pageUrl);
    await page.waitForSelector('[data-model-id="synth-llama-tiny"]', { timeout: 20_000 });
    for (const v of ['lab', 'compare', 'chat', 'reports', 'learn']) await go(v);
    expect(await page.textContent('h1')).toBe('Learn');
    await shot('learn.png');
    await page.click('[data-testid="locale-zh-CN"]');
    expect(await page.textContent('h1')).toBe('学习');
    expect(await page.textContent('[data-testid="nav-compare"]')).toContain('对比');
    await shot('learn-zh.png');
    await page.click('[data-testid="locale-en"]');
    expect(await page.textContent('[data-testid="nav-compare"]')).toContain('Compare');
    expect(consoleErrors).toEqual([]);
  });

  it('runs a tp=2 benchmark from the Lab view, and Compare draws it', async () => {
    await go('lab');
    await page.waitForSelector('[data-testid="spec-verdict"].good', { timeout: 20_000 });
    expect(await page.textContent('[data-testid="spec-string"]')).toBe('tp=2');
    expect(await page.locator('[data-testid="mesh-rank"]').count()).toBe(2);
    // a wrong spec gets the engine's own message
    await page.fill('[data-testid="axis-tp"]', '16');
    await page.waitForSelector('[data-testid="spec-verdict"].bad', { timeout: 10_000 });
    expect(await page.textContent('[data-testid="spec-message"]')).toMatch(/tp=16 exceeds the 8 attention heads/);
    await page.fill('[data-testid="axis-tp"]', '2');
    await page.waitForSelector('[data-testid="spec-verdict"].good', { timeout: 10_000 });
    await page.click('[data-testid="wl-decode"]');
    await page.click('[data-testid="run"]');
    await page.waitForSelector('[data-testid="job"]', { timeout: 10_000 });
    await page.waitForSelector('[data-testid="job"]:not([data-state="running"])', { timeout: 150_000 });
    const state = await page.getAttribute('[data-testid="job"]', 'data-state');
    if (state !== 'done') throw new Error(`the benchmark job ended ${state}: ${await page.textContent('[data-testid="job"]')}`);
    await shot('lab.png');
    // a hybrid mesh: the diagram shows replicas, stages and TP groups (8 ranks)
    await page.fill('[data-testid="axis-dp"]', '2');
    await page.fill('[data-testid="axis-pp"]', '2');
    await expect.poll(() => page.locator('[data-testid="mesh-rank"]').count(), { timeout: 10_000 }).toBe(8);
    expect(await page.textContent('[data-testid="spec-string"]')).toBe('dp=2,pp=2,tp=2');
    await shot('lab-mesh.png');

    // the finished job opens its runs in Compare
    await page.click('[data-testid="job-compare"]');
    await expect.poll(() => page.textContent('h1')).toBe('Compare');
    await page.waitForSelector('[data-testid="chart-throughput"] canvas', { timeout: 20_000 });
    expect(await page.locator('[data-testid="run-row"]').count()).toBe(2);
    const specs = await page.$$eval('[data-testid="run-row"] code', (c) => c.map((x) => x.textContent));
    expect(specs.sort()).toEqual(['single', 'tp=2']);
    await page.waitForTimeout(700);
    expect(await colourPixels(page, '[data-testid="chart-throughput"]', SERIES.throughput)).toBeGreaterThan(200);
    expect(await colourPixels(page, '[data-testid="chart-latency"]', SERIES.p50)).toBeGreaterThan(100);
    expect(await colourPixels(page, '[data-testid="chart-latency"]', SERIES.p99)).toBeGreaterThan(100);
    expect(await colourPixels(page, '[data-testid="chart-memory"]', SERIES.weights)).toBeGreaterThan(100);
    expect(await colourPixels(page, '[data-testid="chart-scaling"]', '#e0663a')).toBeGreaterThan(20);
    expect(await colourPixels(page, '[data-testid="chart-comm"]', SERIES.measured)).toBeGreaterThan(50);
    expect(await page.textContent('[data-testid="badges"]')).toMatch(/matches single/);
    await page.waitForSelector('[data-testid="chart-timeline"] canvas', { timeout: 20_000 });
    await page.waitForTimeout(400);
    expect(await colourPixels(page, '[data-testid="chart-timeline"]', SERIES.compute)).toBeGreaterThan(50);
    await shot('compare.png');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('compare-dark.png');
    await page.emulateMedia({ colorScheme: 'light' });
    expect(consoleErrors).toEqual([]);
  });

  it('streams a chat answer under tp=2 with timings and ranks', async () => {
    await go('chat');
    await page.fill('[data-testid="chat-max"]', '12');
    await page.fill('[data-testid="chat-input"]', 'What does tensor parallelism split?');
    await page.click('[data-testid="chat-send"]');
    await page.waitForSelector('[data-testid="token-cell"]', { timeout: 60_000 });
    await page.waitForSelector('[data-testid="chat-regenerate"]', { timeout: 60_000 });
    const cells = await page.locator('[data-testid="token-cell"]').count();
    expect(cells).toBeGreaterThan(0);
    expect(Number(await page.textContent('[data-testid="ttft"]'))).toBeGreaterThan(0);
    expect(await page.textContent('[data-testid="token-stats"]')).toContain('0,1');
    expect(await page.textContent('[data-role="assistant"] .spec')).toBe('tp=2');
    await shot('chat.png');
    expect(consoleErrors).toEqual([]);
  });

  it('exports the runs as a download and shows the claims', async () => {
    await go('reports');
    await page.waitForSelector('[data-testid="claim-row"]', { timeout: 20_000 });
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('[data-testid="export-md"]')]);
    expect(download.suggestedFilename()).toMatch(/\.md$/);
    const text = readFileSync((await download.path())!, 'utf8');
    expect(text).toContain('tp=2');
    const [json] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('[data-testid="export-json"]')]);
    const doc = JSON.parse(readFileSync((await json.path())!, 'utf8')) as unknown;
    expect(JSON.stringify(doc)).toContain('paralab.run/1');
    await page.waitForSelector('[data-testid="export-result"]');
    await shot('reports.png');
    await go('learn');
    await page.waitForSelector('[data-testid="learn-status"]');
    expect(await page.textContent('[data-testid="learn-status"]')).toContain('2 runs');
    await shot('learn.png');
    expect(consoleErrors).toEqual([]);
  });
});
