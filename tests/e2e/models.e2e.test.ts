/**
 * End to end, in a real browser: the web host with the real lab (presets
 * listed from a temporary, empty cache), Debian's Chromium driven by
 * playwright-core. The Models view must list every preset, draw its chart,
 * log no console error and reach no host but 127.0.0.1; its "fits?" table
 * has a cell per device count. Screenshots: test-artifacts/models.png (light)
 * and models-dark.png.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { createLab } from '../../main/lab/lab';
import { shmAddon } from '../../main/engine/comm/shm-native';
import { startWebHost, type WebHost } from '../../main/server';
import { PRESET_IDS } from '../../main/engine/model/presets';
import { RENDERER_OUT, ensureRendererBuilt } from './build';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(__dirname, '../../test-artifacts');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const skip = !existsSync(CHROMIUM) && !process.env['CI'];
if (skip) console.warn(`models.e2e skipped: ${CHROMIUM} is missing (apt-get install -y chromium); in CI it must be there`);

describe.skipIf(skip)('Models view in Chromium through the web host', () => {
  const envKeys = ['PARALAB_CACHE', 'PARALAB_MODELS', 'HF_HUB_CACHE'] as const;
  const savedEnv = envKeys.map((k) => process.env[k]);
  let tmp: string;
  let host: WebHost;
  let context: BrowserContext;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: CI must install chromium (apt-get install -y chromium)`);
    await ensureRendererBuilt();
    tmp = mkdtempSync(join(tmpdir(), 'paralab-e2e-'));
    for (const d of ['cache', 'hf', 'profile']) mkdirSync(join(tmp, d));
    process.env['PARALAB_CACHE'] = join(tmp, 'cache');
    process.env['HF_HUB_CACHE'] = join(tmp, 'hf');
    delete process.env['PARALAB_MODELS'];
    host = await startWebHost({ lab: createLab(), staticDir: RENDERER_OUT });
    context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1360, height: 820 },
      colorScheme: 'light',
      locale: 'en-US',
    });
  });

  afterAll(async () => {
    await context?.close();
    await host?.close();
    envKeys.forEach((k, i) => (savedEnv[i] === undefined ? delete process.env[k] : (process.env[k] = savedEnv[i])));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('lists the presets with a chart, no console error, no foreign request', async () => {
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    const foreign: string[] = [];
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    context.on('request', (r) => {
      const url = new URL(r.url());
      if (!['http:', 'ws:', 'data:'].includes(url.protocol) || (url.protocol !== 'data:' && url.hostname !== '127.0.0.1')) foreign.push(r.url());
    });

    await page.goto(host.pageUrl);
    await page.waitForSelector('[data-model-id="synth-llama-tiny"]', { timeout: 20_000 });
    const ids = await page.$$eval('[data-testid="model-row"]', (rows) => rows.map((r) => r.getAttribute('data-model-id')));
    expect(ids).toEqual(expect.arrayContaining(['synth-llama-tiny', 'synth-moe-tiny', 'synth-llama-small', 'synth-moe-small', ...PRESET_IDS]));
    const small = page.locator('[data-model-id="synth-llama-small"]');
    expect(await small.locator('[data-testid="params"]').textContent()).toMatch(/^15\d\.\dM$/);
    await expect.poll(() => page.locator('[data-testid="statusbar"]').textContent()).toContain('Web host');
    // the real host says how its ranks would talk here (shared memory where the addon is built)
    const plane = page.locator('[data-testid="transport"]');
    expect(await plane.textContent()).toBe(shmAddon() ? 'ranks: shared memory' : 'ranks: Unix sockets');
    expect(await plane.getAttribute('title')).toMatch(shmAddon() ? /native addon/ : /addon|Linux-only/);

    // the chart really drew: its canvas has a fair share of non-transparent pixels
    await page.waitForSelector('[data-testid="params-chart"] canvas');
    await page.waitForTimeout(400);
    const inked = await page.$eval('[data-testid="params-chart"] canvas', (c) => {
      type Canvas2D = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } };
      const canvas = c as unknown as Canvas2D;
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
      return n / (canvas.width * canvas.height);
    });
    expect(inked).toBeGreaterThan(0.01);

    // the "fits?" estimate: one row per model, one cell per device count
    expect(await page.locator('[data-fit-model="synth-llama-small"] td[data-fits]').count()).toBe(4);

    // the view scrolls inside the shell: grow the viewport to its height for full pictures
    mkdirSync(ARTIFACTS, { recursive: true });
    const h = await page.$eval('.content', (el) => el.scrollHeight);
    await page.setViewportSize({ width: 1360, height: Math.max(820, h + 40) });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(ARTIFACTS, 'models.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(ARTIFACTS, 'models-dark.png') });
    await page.setViewportSize({ width: 1360, height: 820 });

    // a folder that is not there is listed with the reason, through the same WebSocket call
    await page.emulateMedia({ colorScheme: 'light' });
    const missing = join(tmp, 'no-such-model');
    await page.fill('[data-testid="path-input"]', missing);
    await page.click('[data-testid="path-add"]');
    const row = page.locator(`[data-model-id="${missing}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('folder not found');

    expect(consoleErrors).toEqual([]);
    expect(foreign).toEqual([]);
    expect(readdirSync(join(tmp, 'cache'))).toEqual([]);
  });
});
