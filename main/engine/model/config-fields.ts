/**
 * Readers of config.json fields (config.ts): each checks its field's type and
 * range and, when it throws, names the file and the field.
 */
import { ModelError, show } from './errors';

export type Json = Record<string, unknown>;

export function invalid(source: string, field: string, what: string): ModelError {
  return new ModelError('config-invalid', `${source}: field '${field}' ${what}; fix the file or re-download the model`);
}

/** A field's value for a message (errors.ts: JSON, cut at 60 characters, safe on any nesting). */
export { show };

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A positive integer field; `fallback` when absent/null, error when absent and no fallback. */
export function posInt(c: Json, field: string, source: string, fallback?: number): number {
  const v = c[field];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw invalid(source, field, 'is missing (a positive integer is required)');
  }
  // safe integers only: 1e300 passes Number.isInteger but no size computed from it is exact
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw invalid(source, field, `must be a positive integer (found ${show(v)})`);
  }
  return v;
}

/** A positive finite number; `fallback` when absent/null, error when absent and no fallback. */
export function posNumber(c: Json, field: string, source: string, fallback?: number): number {
  const v = c[field];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw invalid(source, field, 'is missing (a positive number is required)');
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw invalid(source, field, `must be a positive number (found ${show(v)})`);
  }
  return v;
}

export function bool(c: Json, field: string, source: string, fallback: boolean): boolean {
  const v = c[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw invalid(source, field, `must be true or false (found ${show(v)})`);
  return v;
}

/** A token id field: a non-negative integer, an array of them, or null. */
export function tokenIds(c: unknown, field: string, source: string): number[] {
  if (!isObject(c)) return [];
  const v = c[field];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw invalid(source, field, `must be a token id or a list of token ids (found ${show(v)})`);
    }
  }
  return list as number[];
}

export function unsupported(source: string, what: string): ModelError {
  return new ModelError('config-unsupported', `${source}: ${what}`);
}

export function nonNegInt(c: Json, field: string, source: string): number {
  const v = c[field];
  if (v === undefined || v === null || v === 0) return 0;
  return posInt(c, field, source);
}
