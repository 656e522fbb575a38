/**
 * Shared pieces of the property-based fuzz tests (issue 12, "nothing from
 * outside may crash the host"): the fixed seed, run counts, one temp folder
 * per test file, and the one property every parser must keep — it returns,
 * or it throws an Error of its own class whose message is one non-empty line.
 *
 * FUZZ_SEED=<n> replays another seed, FUZZ_SCALE=<x> multiplies every run
 * count (e.g. FUZZ_SCALE=20 for a long local hunt); CI uses the defaults.
 * FUZZ_STATS=1 prints, per test file, how often each kind of refusal came
 * up (to see that the generators get past the first check).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import fc from 'fast-check';

export const SEED = Number(process.env.FUZZ_SEED ?? 20240612);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);

/** fast-check parameters: a fixed seed (reproducible CI) and an explicit run count. */
export function params(numRuns: number): fc.Parameters<unknown> {
  return { seed: SEED, numRuns: Math.max(1, Math.round(numRuns * SCALE)), endOnFailure: true };
}

/** One temp folder for the whole test file, removed when the file ends. */
export function fuzzRoot(prefix: string): () => string {
  let root: string | null = null;
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });
  return () => (root ??= fs.mkdtempSync(path.join(os.tmpdir(), `paralab-fuzz-${prefix}-`)));
}

const STATS = process.env.FUZZ_STATS === '1' ? new Map<string, number>() : null;
if (STATS) {
  afterAll(() => {
    const rows = [...STATS].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${String(n).padStart(6)}  ${k}`);
    console.log(`fuzz outcomes:\n${rows.join('\n')}`);
  });
}
function count(key: string): void {
  STATS?.set(key, (STATS.get(key) ?? 0) + 1);
}
/** A refusal's message with paths, numbers and quoted values blanked: its kind. */
function kindOf(e: Error & { code?: unknown }): string {
  return `${String(e.code)}: ${e.message.replace(/\/tmp\/\S*?(?=[: ]|$)/g, '<path>').replace(/'[^']*'/g, "'…'").replace(/\([^)]*\)/g, '(…)').replace(/-?\d[\d.e+]*/g, 'N').slice(0, 110)}`;
}

let counter = 0;
/** A fresh, empty sub-folder of `root` (one per case; removed with the root). */
export function caseDir(root: string): string {
  const d = path.join(root, `c${counter++}`);
  fs.mkdirSync(d);
  return d;
}

/** Messages a parser must never let through: JavaScript's own errors from inside the code. */
const INTERNAL = /Cannot read properties of|Cannot set properties of|is not a function|is not iterable|Invalid array length|Invalid typed array length|Array buffer allocation failed|Maximum call stack size exceeded|Cannot convert undefined or null|Cannot convert a BigInt|Cannot use 'in' operator|out of memory/;

export interface Expected {
  /** the module's error class, e.g. ModelError or SpecError */
  cls: abstract new (...args: never[]) => Error;
  /** codes the error may carry; any string code when omitted */
  codes?: readonly string[];
  /**
   * Messages that may quote a third-party library's own error (the wrapper
   * names the library and what to do), e.g. /@huggingface\/tokenizers can load/.
   * Everywhere else an internal JavaScript error in a message is a bug.
   */
  wrapsLibrary?: RegExp;
}

/** The property: `e` is a clean, one-line error of the module's class with a code. */
export function expectClean(e: unknown, exp: Expected, input: () => string): void {
  const where = () => `input: ${input()}\nthrown: ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`;
  expect(e instanceof Error, where()).toBe(true);
  const err = e as Error & { code?: unknown };
  expect(err instanceof exp.cls, `not a ${exp.cls.name}; ${where()}`).toBe(true);
  expect(typeof err.code, `no code; ${where()}`).toBe('string');
  if (exp.codes) expect(exp.codes, `unexpected code ${String(err.code)}; ${where()}`).toContain(err.code);
  expect(err.message.length > 0, `empty message; ${where()}`).toBe(true);
  expect(/[\n\r\u2028\u2029]/.test(err.message), `message is not one line; ${where()}`).toBe(false);
  if (!exp.wrapsLibrary?.test(err.message)) expect(INTERNAL.test(err.message), `internal error leaked; ${where()}`).toBe(false);
  // a message quoting a whole 100 MB header is not an actionable message
  expect(err.message.length, `message too long; ${where()}`).toBeLessThan(2000);
}

/** Time budget for one call: generous for a shared 2-core machine, far below a hang. */
export const CALL_BUDGET_MS = 1500;

type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

/** What one call ended with: its value, or the thrown error after checking it is clean. */
function judge<T>(ended: { value: T } | { thrown: unknown }, exp: Expected, input: () => string): Outcome<T> {
  if ('value' in ended) {
    count('ok');
    return { ok: true, value: ended.value };
  }
  expectClean(ended.thrown, exp, input);
  count(kindOf(ended.thrown as Error));
  return { ok: false, error: ended.thrown as Error };
}

function inBudget(t0: number, input: () => string): void {
  const ms = performance.now() - t0;
  expect(ms, `one call took ${ms.toFixed(0)} ms (a hang?); input: ${input()}`).toBeLessThan(CALL_BUDGET_MS);
}

/** Runs `fn`; returns its result, or the error after checking what it threw. Fails when one call takes too long. */
export function outcome<T>(fn: () => T, exp: Expected, input: () => string): Outcome<T> {
  const t0 = performance.now();
  let ended: { value: T } | { thrown: unknown };
  try {
    ended = { value: fn() };
  } catch (e) {
    ended = { thrown: e };
  }
  inBudget(t0, input);
  return judge(ended, exp, input);
}

export async function outcomeAsync<T>(fn: () => Promise<T>, exp: Expected, input: () => string): Promise<Outcome<T>> {
  const t0 = performance.now();
  let ended: { value: T } | { thrown: unknown };
  try {
    ended = { value: await fn() };
  } catch (e) {
    ended = { thrown: e };
  }
  inBudget(t0, input);
  return judge(ended, exp, input);
}

/** A short printable form of a fuzz input for failure messages. */
export function preview(v: unknown, max = 400): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : v instanceof Uint8Array ? `bytes[${v.length}] ${Buffer.from(v.subarray(0, 64)).toString('hex')}` : JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}

// ---------------------------------------------------------------------------
// shared arbitraries

/** Strings that trip naive parsers: control characters, quotes, prototype keys, unicode. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.constantFrom(
    '', ' ', '\n', 'a\nb', '\r\n', '\t', '\u2028', '\0', "'", '"', '\\', '__proto__', 'constructor', 'toString', 'hasOwnProperty',
    'valueOf', 'prototype', '💥', 'é', '\uFFFD', '\uD800', '..', '.', '/', 'a/b', 'a\\b', 'NaN', 'Infinity', '-0', '1e309',
  ),
);

/** Numbers near every boundary a size check has. */
export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: -4, max: 70 }),
  fc.constantFrom(0, -0, -1, 0.5, 1.5, -2.5, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 52, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e15, 1e21, 1e300, Number.MAX_VALUE, Number.MIN_VALUE, 1e-300),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/** A value nested `depth` levels deep ([[[...]]] or {"a":{"a":...}}), which recursive code (JSON.stringify) overflows on. */
export function deepValue(depth: number, kind: 'array' | 'object'): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}

/** The JSON text of deepValue(depth, kind), built without recursion. */
export function deepJsonText(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? `${'['.repeat(depth)}0${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}`;
}

/** Deep enough that JSON.stringify (recursive) overflows the stack; JSON.parse (iterative) reads it. */
export const DEEP = 50_000;

/**
 * Stands for a value nested DEEP levels in generated inputs, so that
 * fast-check can print a counterexample (its printer is recursive too):
 * jsonText writes it out, materialize turns it into the real value.
 */
export class Deep {
  private static values = new Map<string, unknown>();
  constructor(readonly kind: 'array' | 'object') {}
  get value(): unknown {
    if (!Deep.values.has(this.kind)) Deep.values.set(this.kind, deepValue(DEEP, this.kind));
    return Deep.values.get(this.kind);
  }
  get text(): string {
    return deepJsonText(DEEP, this.kind);
  }
  [fc.toStringMethod](): string {
    return `<${this.kind} nested ${DEEP} deep>`;
  }
}

/** A generated value with every Deep replaced by the real deep value. */
export function materialize(v: unknown): unknown {
  if (v instanceof Deep) return v.value;
  if (Array.isArray(v)) return v.map(materialize);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: materialize(x), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

/** JSON text of a generated value; each Deep is written out in full. */
export function jsonText(v: unknown): string {
  const deep: Deep[] = [];
  const text = JSON.stringify(v, (_k, x) => (x instanceof Deep ? `\u0000DEEP${deep.push(x) - 1}\u0000` : x)) ?? 'null';
  return deep.length === 0 ? text : text.replace(/"\\u0000DEEP(\d+)\\u0000"/g, (_m, i: string) => deep[Number(i)].text);
}

/** Plain JSON values a file could hold, plus hostile ones (prototype keys, huge numbers, control characters). */
export const plainJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: nastyNumber },
  { weight: 2, arbitrary: nastyString },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, [], {}, [null], [[]], [{}], [1, 2], { a: null }, JSON.parse('{"__proto__": {"x": 1}}')) },
);

/** plainJson plus values nested too deep for recursive code (write them with jsonText). */
export const nastyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 30, arbitrary: plainJson },
  { weight: 1, arbitrary: fc.constantFrom(new Deep('array'), new Deep('object')) },
);
