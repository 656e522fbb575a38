/**
 * Import layering (the VS Code idea, as a test): electron is imported only by
 * main/index.ts and the preload; the renderer reaches main only through the
 * typed contract. Fails with the offending file and import.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '../..');

function sources(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(join(ROOT, dir));
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return /\.(ts|vue|mts|cts)$/.test(name) ? [path] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]);
}

describe('import layering', () => {
  it('keeps electron out of the lab, engine, web host and CLI', () => {
    const bad = ['main/lab', 'main/engine', 'main/server', 'main/cli']
      .flatMap(sources)
      .flatMap((f) => imports(f).filter((i) => i === 'electron' || i.startsWith('electron/')).map((i) => `${f}: ${i}`));
    expect(bad).toEqual([]);
  });

  it('lets the renderer reach main only through main/lab/contract.ts, and never Node built-ins', () => {
    const bad = sources('renderer').flatMap((f) =>
      imports(f)
        .filter((i) => {
          if (i.startsWith('node:') || i === 'electron') return true;
          if (!i.startsWith('.')) return false;
          const target = relative(ROOT, join(ROOT, f, '..', i));
          return target.startsWith('main') && target !== join('main', 'lab', 'contract');
        })
        .map((i) => `${f}: ${i}`),
    );
    expect(bad).toEqual([]);
  });
});
