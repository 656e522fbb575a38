/**
 * Reader for the safetensors format (the writer: safetensors-write.ts).
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

 */
import fs from 'node:fs';
import os from 'node:os';
import { ModelError, errorText, oneLine } from './errors';
import { DTYPE_BYTES, MAX_HEADER_BYTES, checkNoOverlap, corrupt, parseEntry, parseHeaderJson, parseMetadata, product } from './safetensors-header';
import type { SafeDtype, TensorInfo } from './safetensors-header';

export type { SafeDtype, TensorInfo } from './safetensors-header';
export type WritableDtype = 'F32' | 'F16' | 'BF16';
import { bf16ToF32, f16ToF32 } from './halfprec';

/**
 * Part of a tensor to read. `rows` is a half-open range over dimension 0
 * (for a 1-D tensor: the element range); `cols` a half-open range over
 * dimension 1 of a 2-D tensor.
 */
export interface TensorSlice {
  rows?: [number, number];
  cols?: [number, number];
}

/** Scratch size for strided / converting reads: bounds the extra memory a read needs. */
export const CHUNK_BYTES = 8 << 20;
/** fs.readSync / writeSync take at most 2 GiB per call. */
const MAX_IO_BYTES = 1 << 30;

if (os.endianness() !== 'LE') {
  // Tensor data is little-endian and read through typed-array views.
  throw new Error('ParaLab reads safetensors through little-endian typed arrays; this machine is big-endian');
}

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

/** Writes all of `src` at the current position (in bounded pieces). */
export function writeFully(fd: number, src: Uint8Array): void {
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
      const st = fs.fstatSync(fd);
      if (!st.isFile()) {
        throw new ModelError('weights-missing', `${file}: is a folder or device, not a safetensors file; point the model (or its index's weight_map) at the weight files`);
      }
      const size = st.size;
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
    if (!t) throw new ModelError('tensor-missing', `${this.path}: has no tensor '${oneLine(name, 100)}'; the file does not match this model`);
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
      throw new ModelError('unsupported-dtype', `${this.path}: tensor '${oneLine(name, 100)}' is ${t.dtype}, which cannot be read as float weights; re-export the model as F32, F16 or BF16`);
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
      throw new ModelError('shape-mismatch', `${this.path}: tensor '${oneLine(t.name, 100)}' has shape [${t.shape.join(', ')}]; a column slice needs a 2-D tensor`);
    }
    const [c0, c1] = slice.cols;
    this.checkRange(t, 'cols', c0, c1, rowLen);
    return { r0, r1, rowLen, c0, c1 };
  }

  private checkRange(t: TensorInfo, what: string, a: number, b: number, n: number): void {
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || a > b || b > n) {
      throw new ModelError('shape-mismatch', `${this.path}: tensor '${oneLine(t.name, 100)}' of shape [${t.shape.join(', ')}]: ${what} slice [${a}, ${b}) is outside [0, ${n}); the plan asked for more than the tensor has`);
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
