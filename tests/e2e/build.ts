/**
 * Builds the renderer for browser tests when out/renderer is missing or older
 * than its sources. Renderer only (Vite, with the renderer section of
 * electron.vite.config.ts), so a main process mid-edit cannot block UI tests.
 * Usable from a test (`await ensureRendererBuilt()`) or the shell:
 * `npx tsx tests/e2e/build.ts`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
export const RENDERER_OUT = join(ROOT, 'out/renderer');
const SOURCES = ['renderer', 'main/lab/contract.ts', 'electron.vite.config.ts', 'package.json'];

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

export function rendererIsStale(): boolean {
  const index = join(RENDERER_OUT, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  return SOURCES.some((s) => existsSync(join(ROOT, s)) && newestMtime(join(ROOT, s)) > built);
}

export async function buildRenderer(): Promise<void> {
  const { loadConfigFromFile } = await import('electron-vite');
  const { build } = await import('vite');
  const { config } = await loadConfigFromFile({ command: 'build', mode: 'production' }, join(ROOT, 'electron.vite.config.ts'));
  const renderer = config.renderer;
  if (!renderer) throw new Error('electron.vite.config.ts has no renderer section');
  await build({
    ...renderer,
    configFile: false,
    base: './',
    mode: 'production',
    logLevel: 'warn',
    build: { ...renderer.build, outDir: RENDERER_OUT, emptyOutDir: true },
  });
}

/** Builds only when needed; returns whether it built. */
export async function ensureRendererBuilt(): Promise<boolean> {
  if (!rendererIsStale()) return false;
  await buildRenderer();
  return true;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(__filename)) {
  void ensureRendererBuilt().then((built) => console.log(built ? `built ${RENDERER_OUT}` : `${RENDERER_OUT} is up to date`));
}
