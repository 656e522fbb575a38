/**
 * The safetensors header (safetensors.ts reads files with it): the dtypes the
 * format defines, one tensor's entry, and the checks that make a truncated or
 * garbled file fail at open with the file and tensor named.
 *
 * Layout: u64 little-endian header length N, then N bytes of JSON
 * `{ "<name>": {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {..} }`.
 */
import { ModelError, errorText, oneLine, show } from './errors';

/** Every dtype the format defines; only F32 / F16 / BF16 (and F64) convert to float32. */
export const DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;
export type SafeDtype = keyof typeof DTYPE_BYTES;

export interface TensorInfo {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  /** absolute byte range in the file */
  begin: number;
  end: number;
}

/** The format caps headers at 100 MB; a bigger length means the file is not safetensors. */
export const MAX_HEADER_BYTES = 100_000_000;

export function corrupt(file: string, what: string): ModelError {
  return new ModelError('safetensors-corrupt', `${file}: ${what}; re-download or re-export the model`);
}

export const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function parseHeaderJson(text: string, file: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `header is not valid JSON (${errorText(e)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw corrupt(file, 'header is not a JSON object');
  return json as Record<string, unknown>;
}

function isNatural(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Validates one header entry against the dtype size and the file size. */
export function parseEntry(name: string, raw: unknown, file: string, dataStart: number, size: number): TensorInfo {
  const where = `tensor '${oneLine(name, 100)}'`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt(file, `${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  // own keys only: 'constructor' or 'toString' is no dtype
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw new ModelError('unsupported-dtype', `${file}: ${where} has dtype ${show(dtype)}, which is not a safetensors dtype ParaLab knows (${Object.keys(DTYPE_BYTES).join(', ')}); re-export the model as F32, F16 or BF16`);
  }
  if (!Array.isArray(shape) || !shape.every(isNatural)) throw corrupt(file, `${where}: shape ${show(shape)} is not a list of sizes`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNatural) || offsets[0] > offsets[1]) {
    throw corrupt(file, `${where}: data_offsets ${show(offsets)} is not a [begin, end] byte range`);
  }
  const need = product(shape) * DTYPE_BYTES[dtype as SafeDtype];
  if (offsets[1] - offsets[0] !== need) {
    throw corrupt(file, `${where}: data_offsets span ${offsets[1] - offsets[0]} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${need}`);
  }
  const begin = dataStart + offsets[0];
  const end = dataStart + offsets[1];
  if (end > size) {
    throw corrupt(file, `file is truncated (header says ${where} ends at byte ${end} but the file has ${size} bytes)`);
  }
  return { name, dtype: dtype as SafeDtype, shape: shape as number[], begin, end };
}

export function checkNoOverlap(tensors: TensorInfo[], file: string): void {
  const sorted = tensors.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (b.begin < a.end) throw corrupt(file, `tensors '${oneLine(a.name, 100)}' and '${oneLine(b.name, 100)}' overlap (bytes ${b.begin}..${a.end} belong to both)`);
  }
}

export function parseMetadata(raw: unknown, file: string): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw corrupt(file, '__metadata__ is not an object');
  return Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => {
    if (typeof v === 'string') return [k, v];
    try {
      return [k, JSON.stringify(v)];
    } catch {
      throw corrupt(file, `__metadata__ entry '${oneLine(k, 100)}' is not a string but a value nested too deeply to read`);
    }
  }));
}
