/**
 * Argument parsing for the `lab` command line, on node:util's parseArgs: one
 * option table per command, unknown options refused with the list of known ones.
 */
import { parseArgs } from 'node:util';

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
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as Values<T>, positionals: r.positionals };
  } catch (e) {
    const known = Object.keys(options)
      .map((k) => `--${k}`)
      .join(' ');
    throw new UsageError(`${command}: ${(e as Error).message.split('\n')[0]} (options: ${known})`);
  }
}

export function intOpt(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
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
