/**
 * Reader and writer for the safetensors format.
 *
 * Layout: u64 little-endian header length N, then N bytes of JSON
 * `{ "<name>": {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {..} }`,
 * then the raw little-endian tensor data; offsets are relative to the byte
 * after the header.
 *
 * The reader validates the whole header on open (so a truncated or garbled
 * file fails at load time with the file and tensor named, not halfway through
 * a run) and then reads tensors with positioned `fs.readSync`: a file is never
 * read whole, because models are GBs and tensor parallelism wants slices.
 *
 * The writer streams tensor by tensor into a temporary file and renames it
 * into place, so a crash never leaves a half-written file under the real name.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelError, errorText } from './errors';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './halfprec';

/** Every dtype the format defines; only F32 / F16 / BF16 (and F64) convert to float32. */
export const DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;
export type SafeDtype = keyof typeof DTYPE_BYTES;
export type WritableDtype = 'F32' | 'F16' | 'BF16';

export interface TensorInfo {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  /** absolute byte range in the file */
  begin: number;
  end: number;
}

/**
 * Part of a tensor to read. `rows` is a half-open range over dimension 0
 * (for a 1-D tensor: the element range); `cols` a half-open range over
 * dimension 1 of a 2-D tensor.
 */
export interface TensorSlice {
  rows?: [number, number];
  cols?: [number, number];
}

/** The format caps headers at 100 MB; a bigger length means the file is not safetensors. */
const MAX_HEADER_BYTES = 100_000_000;
/** Scratch size for strided / converting reads: bounds the extra memory a read needs. */
const CHUNK_BYTES = 8 << 20;
/** fs.readSync / writeSync take at most 2 GiB per call. */
const MAX_IO_BYTES = 1 << 30;

if (os.endianness() !== 'LE') {
  // Tensor data is little-endian and read through typed-array views.
  throw new Error('ParaLab reads safetensors through little-endian typed arrays; this machine is big-endian');
}

function corrupt(file: string, what: string): ModelError {
  return new ModelError('safetensors-corrupt', `${file}: ${what}; re-download or re-export the model`);
}

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------
// header parsing

function readHeaderLength(fd: number, file: string, size: number): number {
  if (size < 8) throw corrupt(file, `file is ${size} bytes, too short for the 8-byte header length (not a safetensors file)`);
  const b = Buffer.alloc(8);
  readFully(fd, b, 0, file);
  const n = b.readBigUInt64LE(0);
  if (n > BigInt(size - 8)) {
    throw corrupt(file, `file is truncated or not safetensors (header length says ${n} bytes but only ${size - 8} bytes follow it)`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) throw corrupt(file, `header length ${n} is over the format's 100 MB limit (not a safetensors file)`);
  return Number(n);
}

function parseHeaderJson(text: string, file: string): Record<string, unknown> {
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
function parseEntry(name: string, raw: unknown, file: string, dataStart: number, size: number): TensorInfo {
  const where = `tensor '${name}'`;
  if (typeof raw !== 'object' || raw === null) throw corrupt(file, `${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw new ModelError('unsupported-dtype', `${file}: ${where} has dtype ${JSON.stringify(dtype)}, which is not a safetensors dtype ParaLab knows (${Object.keys(DTYPE_BYTES).join(', ')}); re-export the model as F32, F16 or BF16`);
  }
  if (!Array.isArray(shape) || !shape.every(isNatural)) throw corrupt(file, `${where}: shape ${JSON.stringify(shape)} is not a list of sizes`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNatural) || offsets[0] > offsets[1]) {
    throw corrupt(file, `${where}: data_offsets ${JSON.stringify(offsets)} is not a [begin, end] byte range`);
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

function checkNoOverlap(tensors: TensorInfo[], file: string): void {
  const sorted = tensors.filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (b.begin < a.end) throw corrupt(file, `tensors '${a.name}' and '${b.name}' overlap (bytes ${b.begin}..${a.end} belong to both)`);
  }
}

function parseMetadata(raw: unknown, file: string): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw corrupt(file, '__metadata__ is not an object');
  return Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}

// ---------------------------------------------------------------------------
// low-level IO

/** Reads exactly `dst.byteLength` bytes at `position`; a short file is reported as truncated. */
function readFully(fd: number, dst: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < dst.byteLength) {
    const len = Math.min(dst.byteLength - done, MAX_IO_BYTES);
    const n = fs.readSync(fd, dst, done, len, position + done);
    if (n === 0) throw corrupt(file, `file is truncated (a read at byte ${position + done} hit the end of the file)`);
    done += n;
  }
}

function writeFully(fd: number, src: Uint8Array): void {
  let done = 0;
  while (done < src.byteLength) {
    done += fs.writeSync(fd, src, done, Math.min(src.byteLength - done, MAX_IO_BYTES));
  }
}

/** Converts `count` elements of `dtype` from `src` (at element 0) into `out[outOffset..]`. */
function convertInto(dtype: SafeDtype, src: Uint8Array, count: number, out: Float32Array, outOffset: number): void {
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(src.buffer, src.byteOffset, count), outOffset);
      return;
    case 'F16':
      f16ToF32(new Uint16Array(src.buffer, src.byteOffset, count), out, outOffset);
      return;
    case 'BF16':
      bf16ToF32(new Uint16Array(src.buffer, src.byteOffset, count), out, outOffset);
      return;
    case 'F64': {
      const v = new Float64Array(src.buffer, src.byteOffset, count);
      for (let i = 0; i < count; i++) out[outOffset + i] = v[i];
      return;
    }
    default:
      throw new Error(`unreachable: ${dtype}`);
  }
}

/** A fresh buffer whose byteOffset is 0, so any typed-array view of it is aligned. */
function alignedScratch(bytes: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(bytes));
}

// ---------------------------------------------------------------------------

export class SafetensorsFile {
  readonly path: string;
  /** file size in bytes */
  readonly size: number;
  readonly metadata: Record<string, string>;
  private readonly tensors = new Map<string, TensorInfo>();
  private fd: number | null;

  private constructor(file: string, fd: number, size: number, metadata: Record<string, string>, tensors: TensorInfo[]) {
    this.path = file;
    this.fd = fd;
    this.size = size;
    this.metadata = metadata;
    for (const t of tensors) this.tensors.set(t.name, t);
  }

  /** Opens and validates a file. Throws ModelError naming the file (and tensor) when it is not sound. */
  static open(file: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'weights-missing' : 'io';
      throw new ModelError(code, `${file}: cannot be opened (${errorText(e)}); check that the weight file exists and is readable`, { cause: e });
    }
    try {
      const size = fs.fstatSync(fd).size;
      const headerLen = readHeaderLength(fd, file, size);
      const headerBuf = Buffer.alloc(headerLen);
      readFully(fd, headerBuf, 8, file);
      const header = parseHeaderJson(headerBuf.toString('utf8'), file);
      const dataStart = 8 + headerLen;
      const tensors: TensorInfo[] = [];
      for (const [name, raw] of Object.entries(header)) {
        if (name !== '__metadata__') tensors.push(parseEntry(name, raw, file, dataStart, size));
      }
      checkNoOverlap(tensors, file);
      return new SafetensorsFile(file, fd, size, parseMetadata(header.__metadata__, file), tensors);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new ModelError('tensor-missing', `${this.path}: has no tensor '${name}'; the file does not match this model`);
    return t;
  }

  shape(name: string): number[] {
    return [...this.info(name).shape];
  }

  /** Raw bytes of a whole tensor (any dtype). */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    const out = alignedScratch(t.end - t.begin);
    readFully(this.handle(), out, t.begin, this.path);
    return out;
  }

  /**
   * Reads a tensor (or a slice of it) as float32. F32 is read straight into
   * the result; F16 / BF16 / F64 go through a bounded scratch buffer. A
   * column slice reads whole rows chunk by chunk and copies the columns.
   */
  readF32(name: string, slice: TensorSlice = {}): Float32Array {
    const t = this.info(name);
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16' && t.dtype !== 'F64') {
      throw new ModelError('unsupported-dtype', `${this.path}: tensor '${name}' is ${t.dtype}, which cannot be read as float weights; re-export the model as F32, F16 or BF16`);
    }
    const { r0, r1, rowLen, c0, c1 } = this.sliceBounds(t, slice);
    const out = new Float32Array((r1 - r0) * (c1 - c0));
    if (c0 === 0 && c1 === rowLen) this.readContiguous(t, r0 * rowLen, out.length, out);
    else this.readColumns(t, r0, r1, rowLen, c0, c1, out);
    return out;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  // -------------------------------------------------------------------------

  private handle(): number {
    if (this.fd === null) throw new ModelError('io', `${this.path}: read after close(); this is a bug in the caller`);
    return this.fd;
  }

  private sliceBounds(t: TensorInfo, slice: TensorSlice) {
    const rank = t.shape.length;
    const rows = rank === 0 ? 1 : t.shape[0];
    const rowLen = rank <= 1 ? 1 : product(t.shape.slice(1));
    const [r0, r1] = slice.rows ?? [0, rows];
    this.checkRange(t, 'rows', r0, r1, rows);
    if (!slice.cols) return { r0, r1, rowLen, c0: 0, c1: rowLen };
    if (rank !== 2) {
      throw new ModelError('shape-mismatch', `${this.path}: tensor '${t.name}' has shape [${t.shape.join(', ')}]; a column slice needs a 2-D tensor`);
    }
    const [c0, c1] = slice.cols;
    this.checkRange(t, 'cols', c0, c1, rowLen);
    return { r0, r1, rowLen, c0, c1 };
  }

  private checkRange(t: TensorInfo, what: string, a: number, b: number, n: number): void {
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || a > b || b > n) {
      throw new ModelError('shape-mismatch', `${this.path}: tensor '${t.name}' of shape [${t.shape.join(', ')}]: ${what} slice [${a}, ${b}) is outside [0, ${n}); the plan asked for more than the tensor has`);
    }
  }

  /** Reads `count` elements starting at element `first` into `out`. */
  private readContiguous(t: TensorInfo, first: number, count: number, out: Float32Array): void {
    const eb = DTYPE_BYTES[t.dtype];
    const pos = t.begin + first * eb;
    if (t.dtype === 'F32') {
      readFully(this.handle(), new Uint8Array(out.buffer, out.byteOffset, count * 4), pos, this.path);
      return;
    }
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / eb));
    const scratch = alignedScratch(Math.min(count, perChunk) * eb);
    for (let done = 0; done < count; done += perChunk) {
      const n = Math.min(perChunk, count - done);
      const view = scratch.subarray(0, n * eb);
      readFully(this.handle(), view, pos + done * eb, this.path);
      convertInto(t.dtype, view, n, out, done);
    }
  }

  /** Reads rows [r0, r1) in chunks and keeps columns [c0, c1) of each. */
  private readColumns(t: TensorInfo, r0: number, r1: number, rowLen: number, c0: number, c1: number, out: Float32Array): void {
    const eb = DTYPE_BYTES[t.dtype];
    const rowBytes = rowLen * eb;
    const width = c1 - c0;
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    const scratch = alignedScratch(Math.min(r1 - r0, rowsPerChunk) * rowBytes);
    for (let r = r0; r < r1; r += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, r1 - r);
      readFully(this.handle(), scratch.subarray(0, n * rowBytes), t.begin + r * rowBytes, this.path);
      for (let i = 0; i < n; i++) {
        const src = scratch.subarray(i * rowBytes + c0 * eb, i * rowBytes + c1 * eb);
        convertInto(t.dtype, src, width, out, (r - r0 + i) * width);
      }
    }
  }
}

export function openSafetensors(file: string): SafetensorsFile {
  return SafetensorsFile.open(file);
}

// ---------------------------------------------------------------------------
// writer

export interface TensorToWrite {
  name: string;
  dtype: WritableDtype;
  shape: number[];
  /** the values, or a function producing them when the writer reaches this tensor (keeps memory to one tensor) */
  data: Float32Array | (() => Float32Array);
}

export interface WriteOptions {
  /** called after each tensor is written */
  onTensor?: (index: number, count: number, name: string) => void;
}

const WRITE_BYTES: Record<WritableDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** The JSON header, padded with spaces to a multiple of 8 bytes as the reference implementation does. */
function buildHeader(tensors: TensorToWrite[], metadata: Record<string, string> | undefined): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new Error(`writeSafetensors: duplicate or reserved tensor name '${t.name}'`);
    if (!(t.dtype in WRITE_BYTES)) throw new Error(`writeSafetensors: tensor '${t.name}': dtype ${t.dtype} cannot be written (F32, F16, BF16)`);
    const bytes = product(t.shape) * WRITE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(padded);
  const out = Buffer.alloc(8 + padded.length);
  out.writeBigUInt64LE(BigInt(padded.length), 0);
  padded.copy(out, 8);
  return out;
}

/** Writes one tensor's values in `dtype`, converting in bounded chunks. */
function writeTensorData(fd: number, t: TensorToWrite, data: Float32Array): void {
  if (data.length !== product(t.shape)) {
    throw new ModelError('shape-mismatch', `writeSafetensors: tensor '${t.name}' has ${data.length} values but shape [${t.shape.join(', ')}] needs ${product(t.shape)}`);
  }
  if (t.dtype === 'F32') {
    writeFully(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return;
  }
  const convert = t.dtype === 'F16' ? f32ToF16 : f32ToBf16;
  const perChunk = CHUNK_BYTES / 2;
  const scratch = new Uint16Array(Math.min(perChunk, data.length));
  for (let i = 0; i < data.length; i += perChunk) {
    const part = data.subarray(i, Math.min(i + perChunk, data.length));
    const dst = scratch.subarray(0, part.length);
    convert(part, dst);
    writeFully(fd, new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength));
  }
}

/**
 * Writes `tensors` to `file` atomically (temporary file in the same folder,
 * fsync, rename). Tensor data is produced and written one tensor at a time,
 * and the event loop gets a turn between tensors so progress can be reported.
 */
export async function writeSafetensors(
  file: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
  opts: WriteOptions = {},
): Promise<void> {
  const header = buildHeader(tensors, metadata);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const fd = fs.openSync(tmp, 'w');
  try {
    writeFully(fd, header);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      writeTensorData(fd, t, typeof t.data === 'function' ? t.data() : t.data);
      opts.onTensor?.(i, tensors.length, t.name);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
