/**
 * Argument parsing for the `lab` command line, on node:util's parseArgs: one
 * option table per command, unknown options refused with the list of known ones.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { MAX_TIMEOUT_MS, maxThreadsPerRank } from '../engine/host/launch';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type OptionDef = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };
export type Options = Record<string, OptionDef>;

/** The parsed values, typed from the option table. */
export type Values<T extends Options> = {
  [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : T[K]['multiple'] extends true ? string[] : string;
};

export function parse<T extends Options>(command: string, argv: string[], options: T): { values: Values<T>; positionals: string[] } {
  try {
    const r = parseArgs({ args: joinNegatives(argv, options), allowPositionals: true, options, strict: true });
    return { values: r.values as Values<T>, positionals: r.positionals };
  } catch (e) {
    const known = Object.keys(options)
      .map((k) => `--${k}`)
      .join(' ');
    throw new UsageError(`${command}: ${(e as Error).message.split('\n')[0]} (options: ${known})`);
  }
}

/**
 * `--max-new-tokens -3`: parseArgs would read -3 as an option and answer
 * "argument is ambiguous"; a negative number after a string option is its
 * value (then refused by the option's own check, with its bounds).
 */
function joinNegatives(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : null;
    if (name && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d|inf|Infinity)/i.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export function intOpt(name: string, v: string | undefined, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer ${max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `≥ ${min}`}, got '${v}'`);
  }
  return n;
}

/** --threads-per-rank: 1 … twice the cores (each thread is an onnxruntime worker with its own stack and arena). */
export function threadsOpt(v: string | undefined): number | undefined {
  const cores = os.availableParallelism();
  if (v === undefined) return undefined;
  if (!Number.isInteger(Number(v)) || Number(v) < 1 || Number(v) > maxThreadsPerRank(cores)) {
    throw new UsageError(`--threads-per-rank must be an integer from 1 to ${maxThreadsPerRank(cores)} (twice this machine's ${cores} cores), got '${v}'`);
  }
  return Number(v);
}

/** --timeout SECONDS → ms: how long one step may take before the run counts as hung. */
export function timeoutOpt(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = Number(v);
  if (!Number.isFinite(s) || s <= 0 || s * 1000 > MAX_TIMEOUT_MS) throw new UsageError(`--timeout must be a number of seconds, more than 0 and at most 86400 (a day); got '${v}'`);
  return s * 1000;
}

export function numOpt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${v}'`);
  return n;
}

export function idsOpt(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const ids = v.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new UsageError(`--prompt-ids must be comma-separated non-negative integers, e.g. 1,2,3; got '${v}'`);
  }
  return ids;
}

export function deviceOpt(v: string | undefined): 'cpu' | 'webgpu' | 'cuda' {
  if (v === undefined) return 'cpu';
  if (v === 'cpu' || v === 'webgpu' || v === 'cuda') return v;
  throw new UsageError(`--device must be cpu, webgpu or cuda; got '${v}'`);
}
