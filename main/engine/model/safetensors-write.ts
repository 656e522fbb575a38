/**
 * Writer for the safetensors format (the reader and the layout:
 * safetensors.ts). It streams tensor by tensor into a temporary file and
 * renames it into place, so a crash never leaves a half-written file under
 * the real name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelError } from './errors';
import { f32ToBf16, f32ToF16 } from './halfprec';
import { CHUNK_BYTES, writeFully } from './safetensors';
import { product } from './safetensors-header';
import type { WritableDtype } from './safetensors';

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
