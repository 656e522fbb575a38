/**
 * Fuzzing safetensors files and the sharded index, through the real reader
 * (SafetensorsFile.open, WeightStore.open on a folder): random bytes, random
 * 8-byte header lengths, and JSON headers with random dtypes, shapes and
 * offsets (overlapping, out of range, negative, non-integer, huge). Each
 * file either opens — and then every tensor reads back within the file — or
 * is refused with a one-line ModelError; a header that claims a huge tensor
 * is refused before anything of that size is allocated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { ModelError } from '../../main/engine/model/errors';
import { DTYPE_BYTES, MAX_HEADER_BYTES } from '../../main/engine/model/safetensors-header';
import { SafetensorsFile } from '../../main/engine/model/safetensors';
import { WeightStore, validateWeights } from '../../main/engine/model/weights';
import { presetConfig } from '../../main/engine/model/presets';
import { caseDir, Deep, fuzzRoot, jsonText, nastyJson, nastyNumber, nastyString, outcome, params, plainJson, preview } from './fuzz-helpers';

const root = fuzzRoot('safetensors');
const MODEL = { cls: ModelError };
const FILE_CODES = ['safetensors-corrupt', 'unsupported-dtype', 'io'];
const DTYPES = Object.keys(DTYPE_BYTES);
const FLOAT = new Set(['F32', 'F16', 'BF16', 'F64']);

/** A safetensors file: u64 LE header length, header text, data bytes (the length can lie). */
function fileBytes(header: string | Uint8Array, data: Uint8Array, claimedLength?: bigint): Buffer {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : Buffer.from(header);
  const out = Buffer.alloc(8 + h.length + data.length);
  out.writeBigUInt64LE(claimedLength ?? BigInt(h.length), 0);
  h.copy(out, 8);
  Buffer.from(data).copy(out, 8 + h.length);
  return out;
}

function writeCase(bytes: Uint8Array, name = 'model.safetensors'): string {
  const file = path.join(caseDir(root()), name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Opens `file`; when it opens, reads every tensor (bytes, floats, a slice) and checks it stays inside the file. */
function openAndRead(file: string, input: () => string, slice?: { rows?: [number, number]; cols?: [number, number] }): boolean {
  const r = outcome(() => SafetensorsFile.open(file), { cls: ModelError, codes: FILE_CODES }, input);
  if (!r.ok) return false;
  const f = r.value;
  try {
    const size = fs.statSync(file).size;
    for (const name of f.names()) {
      const t = f.info(name);
      expect(t.begin >= 0 && t.begin <= t.end && t.end <= size, `${name}: [${t.begin}, ${t.end}) of ${size}; ${input()}`).toBe(true);
      expect(f.readBytes(name).length).toBe(t.end - t.begin);
      if (FLOAT.has(t.dtype)) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        expect(f.readF32(name).length).toBe(n);
        if (slice) outcome(() => f.readF32(name, slice), { cls: ModelError, codes: ['shape-mismatch'] }, () => `${input()} slice ${preview(slice)}`);
      } else {
        outcome(() => f.readF32(name), { cls: ModelError, codes: ['unsupported-dtype'] }, input);
      }
    }
  } finally {
    f.close();
  }
  return true;
}

describe('safetensors reader fuzz', () => {
  it('random bytes: opened or a one-line ModelError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        openAndRead(writeCase(bytes), () => preview(bytes));
      }),
      params(600),
    );
  });

  it('random 8-byte header lengths (0, exact, beyond the file, 2^63, 2^64-1) before random or JSON headers', () => {
    const length = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.bigInt({ min: 0n, max: 400n }),
      fc.constantFrom(0n, 1n, 2n, 7n, 8n, BigInt(MAX_HEADER_BYTES), BigInt(MAX_HEADER_BYTES) + 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n),
    );
    const header = fc.oneof(
      fc.uint8Array({ maxLength: 120 }),
      fc.constantFrom('{}', '{"__metadata__":{}}', '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', '', '   ', 'null', '[]'),
      fc.json({ maxDepth: 3 }),
    );
    fc.assert(
      fc.property(length, header, fc.uint8Array({ maxLength: 64 }), fc.boolean(), (claimed, h, data, exact) => {
        const bytes = fileBytes(h, data, exact ? undefined : claimed);
        openAndRead(writeCase(bytes), () => `${claimed} ${preview(h)} +${data.length}`);
      }),
      params(1200),
    );
  });

  /** One header entry: mostly well-formed, with each field sometimes wrong in its own way. */
  const entry = fc.record({
    name: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('w', 'b', 'model.norm.weight', 'x.y') }, { weight: 2, arbitrary: nastyString }),
    dtype: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...DTYPES) },
      { weight: 1, arbitrary: fc.constantFrom('f32', 'F8', 'Q4_0', '', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf') },
      { weight: 1, arbitrary: plainJson },
    ),
    shape: fc.oneof(
      { weight: 8, arbitrary: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }) },
      { weight: 2, arbitrary: fc.array(nastyNumber, { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.constantFrom([2 ** 20, 2 ** 20], [2 ** 26, 2 ** 26, 4], [2 ** 53 - 1], [2 ** 40, 0], [0, 2 ** 53 - 1, 2 ** 53 - 1], [1e300], [3, 1e15]) },
      { weight: 1, arbitrary: plainJson },
    ),
    offsets: fc.oneof(
      { weight: 6, arbitrary: fc.constant('auto' as const) },
      { weight: 1, arbitrary: fc.constant('overlap' as const) },
      { weight: 2, arbitrary: fc.tuple(nastyNumber, nastyNumber) },
      { weight: 1, arbitrary: fc.array(fc.integer({ min: -2, max: 100 }), { maxLength: 3 }) },
      { weight: 1, arbitrary: plainJson },
    ),
    drop: fc.constantFrom<'none' | 'dtype' | 'shape' | 'data_offsets'>('none', 'none', 'none', 'none', 'dtype', 'shape', 'data_offsets'),
    asValue: fc.option(plainJson, { freq: 15 }),
  });

  /** A header built from entries: 'auto' offsets follow each other (or overlap the previous one), others are as drawn. */
  type Entry = typeof entry extends fc.Arbitrary<infer T> ? T : never;
  function buildHeader(entries: Entry[], metadata: unknown): { text: string; dataBytes: number } {
    const parts: string[] = [];
    let at = 0;
    let prev: [number, number] = [0, 0];
    for (const e of entries) {
      const n = Array.isArray(e.shape) && e.shape.every((d) => typeof d === 'number') ? (e.shape as number[]).reduce((a, b) => a * b, 1) : 1;
      const size = typeof e.dtype === 'string' && e.dtype in DTYPE_BYTES ? n * DTYPE_BYTES[e.dtype as keyof typeof DTYPE_BYTES] : 4;
      let offsets: unknown = e.offsets;
      if (e.offsets === 'auto') {
        offsets = [at, at + size];
        prev = [at, at + size];
        if (Number.isSafeInteger(size) && size < 4096) at += size;
      } else if (e.offsets === 'overlap') {
        offsets = [Math.max(0, prev[1] - 1), Math.max(0, prev[1] - 1) + size];
      }
      const fields: string[] = [];
      if (e.drop !== 'dtype') fields.push(`"dtype":${jsonText(e.dtype)}`);
      if (e.drop !== 'shape') fields.push(`"shape":${jsonText(e.shape)}`);
      if (e.drop !== 'data_offsets') fields.push(`"data_offsets":${jsonText(offsets)}`);
      parts.push(`${JSON.stringify(e.name)}:${e.asValue !== null ? jsonText(e.asValue) : `{${fields.join(',')}}`}`);
    }
    if (metadata !== undefined) parts.push(`"__metadata__":${jsonText(metadata)}`);
    return { text: `{${parts.join(',')}}`, dataBytes: at };
  }

  it('JSON headers with random dtypes, shapes and offsets: opened and readable, or a one-line ModelError', () => {
    let opened = 0;
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 5 }),
        fc.option(fc.oneof(fc.dictionary(nastyString, plainJson, { maxKeys: 3 }), plainJson), { nil: undefined, freq: 3 }),
        fc.integer({ min: -8, max: 8 }),
        fc.constantFrom(0, 0, 0, 1, 7),
        fc.option(fc.record({ rows: fc.tuple(fc.integer({ min: -1, max: 8 }), fc.integer({ min: -1, max: 8 })), cols: fc.option(fc.tuple(fc.integer({ min: -1, max: 8 }), fc.integer({ min: 0, max: 8 })), { nil: undefined }) }), { nil: undefined }),
        (entries, metadata, extra, pad, slice) => {
          const { text, dataBytes } = buildHeader(entries, metadata);
          const data = new Uint8Array(Math.max(0, dataBytes + extra)).map((_, i) => (i * 37) & 0xff);
          const file = writeCase(fileBytes(text + ' '.repeat(pad), data));
          if (openAndRead(file, () => preview(text, 600), slice)) opened++;
        },
      ),
      params(2000),
    );
    // the generator must reach the reading paths, not only the first refusal
    expect(opened).toBeGreaterThan(100);
  });

  it('values nested 50 000 deep in every place of the header: a one-line ModelError, not a stack overflow', () => {
    const deep = fc.constantFrom(new Deep('array'), new Deep('object'));
    const ok = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
    const place = fc.constantFrom<(d: Deep) => unknown>(
      (d) => ({ w: { ...ok, dtype: d } }),
      (d) => ({ w: { ...ok, shape: d } }),
      (d) => ({ w: { ...ok, shape: [1, d] } }),
      (d) => ({ w: { ...ok, data_offsets: d } }),
      (d) => ({ w: { ...ok, data_offsets: [0, d] } }),
      (d) => ({ w: d }),
      (d) => ({ w: ok, __metadata__: d }),
      (d) => ({ w: ok, __metadata__: { format: 'pt', x: d } }),
      (d) => ({ w: ok, extra: { ...ok, junk: d } }),
      (d) => d,
    );
    fc.assert(
      fc.property(deep, place, (d, at) => {
        const text = jsonText(at(d));
        openAndRead(writeCase(fileBytes(text, new Uint8Array(8))), () => preview(text));
      }),
      params(40),
    );
  });

  it('a header that claims a huge tensor is refused before anything that size is allocated', () => {
    const alloc = vi.spyOn(Buffer, 'alloc');
    const huge = fc.record({
      shape: fc.constantFrom([2 ** 20, 2 ** 20], [2 ** 15, 2 ** 15, 2 ** 15], [2 ** 40], [2 ** 50], [2 ** 30, 8], [1e9, 1e6]),
      dtype: fc.constantFrom('F32', 'F16', 'BF16', 'F64', 'U8', 'I64'),
      start: fc.constantFrom(0, 1, 8),
    });
    fc.assert(
      fc.property(huge, ({ shape, dtype, start }) => {
        const bytes = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype as keyof typeof DTYPE_BYTES];
        const text = JSON.stringify({ w: { dtype, shape, data_offsets: [start, start + bytes] } });
        const file = writeCase(fileBytes(text, new Uint8Array(64)));
        alloc.mockClear();
        const ab0 = process.memoryUsage().arrayBuffers;
        const r = outcome(() => SafetensorsFile.open(file), MODEL, () => text);
        expect(r.ok, `opened a file claiming ${bytes} bytes of tensor data in 64: ${text}`).toBe(false);
        if (!r.ok) expect((r.error as ModelError).code).toBe('safetensors-corrupt');
        const biggest = Math.max(0, ...alloc.mock.calls.map((c) => Number(c[0])));
        expect(biggest, 'largest Buffer.alloc while opening').toBeLessThanOrEqual(fs.statSync(file).size);
        expect(process.memoryUsage().arrayBuffers - ab0).toBeLessThan(64 << 20);
      }),
      params(200),
    );
  });
  afterEach(() => vi.restoreAllMocks());
});

// ---------------------------------------------------------------------------
// the sharded index

/** A small valid safetensors file holding F32 tensors `names` of shape [2]. */
function shard(names: string[]): Buffer {
  const header: Record<string, unknown> = {};
  names.forEach((n, i) => (header[n] = { dtype: 'F32', shape: [2], data_offsets: [8 * i, 8 * i + 8] }));
  return fileBytes(JSON.stringify(header), new Uint8Array(8 * names.length));
}

const TENSORS = ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight', 'model.layers.0.input_layernorm.weight'];
const SHARD_NAMES = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];

describe('model.safetensors.index.json fuzz', () => {
  const shardFile = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...SHARD_NAMES) },
    { weight: 2, arbitrary: fc.constantFrom('', '.', '..', './model-00001-of-00002.safetensors', '../x.safetensors', '/etc/passwd', 'a/b.safetensors', 'a\\b', 'missing.safetensors', 'model.safetensors.index.json', 'config.json', 'sub', 'nul\0.safetensors', 'line\nbreak.safetensors') },
    { weight: 1, arbitrary: nastyString },
    { weight: 1, arbitrary: plainJson },
  );
  const index = fc.oneof(
    { weight: 6, arbitrary: fc.record({ metadata: fc.option(plainJson, { nil: undefined }), weight_map: fc.dictionary(fc.oneof(fc.constantFrom(...TENSORS), nastyString), shardFile, { maxKeys: 6 }) }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.record({ weight_map: nastyJson }).map((v) => jsonText(v.weight_map)).map((m) => `{"weight_map":${m}}`) },
    { weight: 1, arbitrary: nastyJson.map(jsonText) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  );
  // which shard holds which tensor (possibly both, possibly none), and whether a shard is broken
  const layout = fc.record({
    inShard: fc.array(fc.constantFrom(0, 1, 2, 3), { minLength: TENSORS.length, maxLength: TENSORS.length }),
    present: fc.constantFrom(0b11, 0b11, 0b01, 0b10, 0b00),
    broken: fc.constantFrom(-1, -1, -1, 0, 1),
    subdir: fc.boolean(),
    extraStray: fc.boolean(),
  });

  it('random and mutated indexes over real shards: opened or a one-line ModelError', () => {
    let opened = 0;
    fc.assert(
      fc.property(index, layout, (indexText, l) => {
        const dir = caseDir(root());
        fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), indexText);
        SHARD_NAMES.forEach((name, s) => {
          if (!(l.present & (1 << s))) return;
          const names = TENSORS.filter((_, i) => l.inShard[i] === s || l.inShard[i] === 3);
          fs.writeFileSync(path.join(dir, name), s === l.broken ? Buffer.from('not safetensors') : shard(names));
        });
        if (l.subdir) fs.mkdirSync(path.join(dir, 'sub'));
        if (l.extraStray) fs.writeFileSync(path.join(dir, 'config.json'), '{}');
        const input = () => `${preview(indexText, 600)} ${JSON.stringify(l)}`;
        const r = outcome(() => WeightStore.open(dir), { cls: ModelError, codes: ['safetensors-corrupt', 'weights-missing', 'tensor-missing', 'unsupported-dtype', 'io'] }, input);
        if (!r.ok) return;
        opened++;
        try {
          for (const name of r.value.names()) expect(r.value.readF32(name).length).toBe(2);
          for (const p of r.value.paths) expect(path.dirname(p), `a shard outside the folder: ${p}; ${input()}`).toBe(dir);
          outcome(() => validateWeights(r.value, presetConfig('synth-llama-tiny')), { cls: ModelError, codes: ['tensor-missing', 'shape-mismatch', 'unsupported-dtype'] }, input);
        } finally {
          r.value.close();
        }
      }),
      params(700),
    );
    expect(opened).toBeGreaterThan(20);
  });
});
