/**
 * Import layering (the VS Code idea, as a test): which rooms may import
 * which. Fails with the offending file and import.
 *
 *   - electron only in main/index.ts and the preload; the renderer reaches
 *     main only through the typed contract (main/lab/contract.ts)
 *   - the engine never imports the app layers (lab, cli, server, the Electron entry)
 *   - the rank side never imports the host side: engine/host/ is imported by
 *     nothing in the engine but itself; engine/rank/ only by the host, and the
 *     host takes only the wire contract from it (protocol.ts, channel.ts)
 *   - the ground floors stay ground: engine/types.ts imports nothing,
 *     comm/ only comm/, model/ only model/ and types.ts, runtime/ nothing of
 *     the strategies but the ShardPlan type
 *   - plans are pure: they import only model types, split helpers and other plans
 *   - no import loops anywhere (found here, by Tarjan's algorithm)
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
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
    return /\.(ts|vue|mts|cts)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]);
}

/** A relative import resolved to a source file (root-relative), or null for packages / non-source files. */
function resolveImport(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = normalize(join(dirname(file), spec));
  for (const c of [base, `${base}.ts`, `${base}.vue`, join(base, 'index.ts')]) {
    if (/\.(ts|vue)$/.test(c) && existsSync(join(ROOT, c)) && statSync(join(ROOT, c)).isFile()) return c;
  }
  return null;
}

/** Every relative import between source files: [from, to]. */
function edges(files: string[]): [string, string][] {
  return files.flatMap((f) => imports(f).map((i) => resolveImport(f, i)).filter((t): t is string => t !== null && t !== f).map((t) => [f, t] as [string, string]));
}

const ENGINE = 'main/engine/';
const inEngine = (f: string, room: string) => f.startsWith(`${ENGINE}${room}`);

/** The rules, as predicates over one import; each returns why it is wrong, or null. */
export const RULES: ((from: string, to: string) => string | null)[] = [
  (from, to) => (from.startsWith(ENGINE) && /^main\/(lab|cli|server)\/|^main\/(index|ipc|csp)\.ts$/.test(to) ? 'the engine imports an app layer' : null),
  (from, to) => (inEngine(to, 'host/') && from.startsWith(ENGINE) && !inEngine(from, 'host/') ? 'the rank side (or a floor below) imports the host side' : null),
  (from, to) =>
    inEngine(to, 'rank/') && from.startsWith(ENGINE) && !inEngine(from, 'rank/') && !(inEngine(from, 'host/') && /rank\/(protocol|channel)\.ts$/.test(to))
      ? 'only the host may import the rank side, and only its wire contract (rank/protocol.ts, rank/channel.ts)'
      : null,
  (from) => (from === `${ENGINE}types.ts` ? 'engine/types.ts is the bottom floor: it imports nothing' : null),
  (from, to) => (inEngine(from, 'comm/') && !inEngine(to, 'comm/') ? 'comm/ is a ground floor: it imports only comm/' : null),
  (from, to) => (inEngine(from, 'model/') && !inEngine(to, 'model/') && to !== `${ENGINE}types.ts` ? 'model/ imports only model/ and engine/types.ts' : null),
  (from, to) => (inEngine(from, 'runtime/') && inEngine(to, 'parallel/') && to !== `${ENGINE}parallel/plan.ts` ? 'runtime/ runs every plan and imports no strategy (only the ShardPlan type)' : null),
  (from, to) => (PLANS.includes(from) && !PLANS.includes(to) && to !== `${ENGINE}model/types.ts` ? 'a plan imports something other than model types, split helpers and other plans' : null),
];

/** The pure plan files: layout rules every rank and the host evaluate for themselves. */
export const PLANS = [
  'parallel/spec.ts', 'parallel/split.ts', 'parallel/mesh.ts', 'parallel/plan.ts', 'parallel/validate.ts',
  'parallel/dp/route.ts', 'parallel/tp/layout.ts', 'parallel/sp/layout.ts', 'parallel/sp/megatron/plan.ts', 'parallel/ep/plan.ts',
].map((p) => `${ENGINE}${p}`);

/** Strongly connected components with more than one file (import loops). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const ALL = ['main', 'preload', 'renderer/src'].flatMap(sources);

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

  it('keeps every import of the engine on its floor (host above rank, rank above strategies, plans pure, ground floors ground)', () => {
    const bad = edges(ALL.filter((f) => f.startsWith(ENGINE))).flatMap(([from, to]) => RULES.map((r) => r(from, to)).filter(Boolean).map((why) => `${from} → ${to}: ${why}`));
    expect(bad).toEqual([]);
  });

  it('keeps the plans free of Node, packages and side effects', () => {
    const bad = PLANS.flatMap((f) => imports(f).filter((i) => !i.startsWith('.')).map((i) => `${f}: ${i}`));
    expect(bad).toEqual([]);
  });

  it('has no import loops', () => {
    const graph = new Map<string, string[]>(ALL.map((f) => [f, []]));
    for (const [from, to] of edges(ALL)) graph.get(from)!.push(to);
    expect(cycles(graph)).toEqual([]);
  });

  it('finds what it is looking for (the rules and the loop finder on a made-up graph)', () => {
    expect(RULES.map((r) => r(`${ENGINE}parallel/plan.ts`, `${ENGINE}host/engine.ts`)).filter(Boolean)).toHaveLength(2);
    expect(RULES.map((r) => r(`${ENGINE}host/engine.ts`, `${ENGINE}rank/protocol.ts`)).filter(Boolean)).toEqual([]);
    expect(RULES.map((r) => r(`${ENGINE}host/engine.ts`, `${ENGINE}rank/stage.ts`)).filter(Boolean)).toHaveLength(1);
    expect(RULES.map((r) => r(`${ENGINE}model/catalog.ts`, 'main/lab/contract.ts')).filter(Boolean)).toHaveLength(2);
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c']]);
  });
});
