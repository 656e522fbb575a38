/**
 * Fuzzing llama2.c checkpoints (readLlama2cHeader, importLlama2c): random
 * 28-byte headers (7 int32: dim, hidden, layers, heads, kv heads, vocab —
 * negative for an untied classifier —, seq_len) with negative, zero and
 * huge values, files cut short or longer than the header implies, and
 * folders named like checkpoints. A header either describes a checkpoint of
 * exactly the file's size, or is refused with a one-line ModelError; only
 * the 28 header bytes are read to decide. Small valid ones are imported and
 * the imported folder must load.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadModelConfig } from '../../main/engine/model/config';
import { ModelError } from '../../main/engine/model/errors';
import { importLlama2c, readLlama2cHeader } from '../../main/engine/model/llama2c';
import { WeightStore, validateWeights } from '../../main/engine/model/weights';
import { caseDir, fuzzRoot, outcome, outcomeAsync, params, preview } from './fuzz-helpers';

const root = fuzzRoot('llama2c');
const HEADER = { cls: ModelError, codes: ['config-invalid', 'io'] };

type Header = [dim: number, hidden: number, layers: number, heads: number, kvHeads: number, vocab: number, seqLen: number];

/** Bytes of a legacy checkpoint with this header, as llama2.c's export writes it (null when the header is not one). */
function expectedBytes([dim, ffn, layers, heads, kvHeads, vocabSigned, seqLen]: Header): number | null {
  const vocab = Math.abs(vocabSigned);
  if ([dim, ffn, layers, heads, kvHeads, vocab, seqLen].some((n) => n <= 0) || dim % heads !== 0 || heads % kvHeads !== 0 || (dim / heads) % 2 !== 0) return null;
  const headDim = dim / heads;
  const kv = kvHeads * headDim;
  const floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * ffn * dim) + dim + seqLen * headDim + (vocabSigned < 0 ? vocab * dim : 0);
  return 28 + 4 * floats;
}

const int32 = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -4, max: 80 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1, 2 ** 16, 2 ** 16 + 1, 2 ** 18, 2 ** 20, 2 ** 21, 2 ** 21 + 1, 1024, 1025, 2 ** 31 - 1, -(2 ** 31), -(2 ** 21), 0x616b3432) },
  { weight: 1, arbitrary: fc.integer() },
);

/** Headers near a valid one: small dims that mostly divide, and the vocab sign both ways. */
const nearValid: fc.Arbitrary<Header> = fc
  .record({
    heads: fc.constantFrom(1, 2, 4, 3),
    headDim: fc.constantFrom(2, 4, 8, 3),
    kvDiv: fc.constantFrom(1, 2, 3),
    ffn: fc.integer({ min: 1, max: 48 }),
    layers: fc.integer({ min: 1, max: 3 }),
    vocab: fc.integer({ min: 1, max: 64 }).chain((v) => fc.constantFrom(v, -v)),
    seqLen: fc.integer({ min: 1, max: 32 }),
  })
  .map(({ heads, headDim, kvDiv, ffn, layers, vocab, seqLen }) => [heads * headDim, ffn, layers, heads, Math.max(1, Math.floor(heads / kvDiv)), vocab, seqLen] as Header);

/** Large but sane headers: their file sizes run to GBs, made as sparse files, never written. */
const bigValid: fc.Arbitrary<Header> = fc.constantFrom<Header>(
  [4096, 11008, 32, 32, 32, 32000, 2048],
  [2 ** 16, 2 ** 18, 1024, 1024, 1024, 2 ** 21, 2 ** 20],
  [288, 768, 6, 6, 6, -32000, 256],
  [2 ** 16, 2 ** 18, 1024, 1024, 1, -(2 ** 21), 2 ** 20],
);

const header: fc.Arbitrary<Header> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(int32, int32, int32, int32, int32, int32, int32) },
  { weight: 4, arbitrary: nearValid },
  { weight: 1, arbitrary: bigValid },
);

/** The file's size relative to what the header implies: exact, cut, longer, or anything. */
const sizing = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'exact' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delta' as const), by: fc.constantFrom(-4, -1, 1, 4, -1024, 2 ** 20) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('size' as const), bytes: fc.oneof(fc.integer({ min: 0, max: 27 }), fc.integer({ min: 28, max: 4096 })) }) },
);

/** Writes the header and sets the size; false when this file system cannot hold a sparse file that big. */
function writeCheckpoint(file: string, h: Header, size: number): boolean {
  const head = Buffer.from(Int32Array.from(h).buffer);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, head, 0, Math.min(28, size));
    // sparse: a size of gigabytes costs nothing on disk, and the reader may only look at the header
    fs.ftruncateSync(fd, size);
    return true;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

describe('llama2.c header fuzz', () => {
  it('random, near-valid and huge 7-int32 headers, files cut or padded: a layout of exactly the file, or a one-line ModelError', () => {
    let accepted = 0;
    fc.assert(
      fc.property(header, sizing, (h, s) => {
        const want = expectedBytes(h);
        const size = s.kind === 'size' ? s.bytes : Math.max(0, Math.min((want ?? 4096) + (s.kind === 'delta' ? s.by : 0), 2 ** 35));
        const file = path.join(caseDir(root()), 'model.bin');
        fc.pre(writeCheckpoint(file, h, size));
        const input = () => `${preview(h)} size ${size} (header implies ${want})`;
        const r = outcome(() => readLlama2cHeader(file), HEADER, input);
        if (!r.ok) return;
        accepted++;
        const { config, bytes } = r.value;
        expect(bytes, input()).toBe(size);
        expect(want, input()).toBe(size);
        expect([config.hidden, config.ffn, config.layers, config.heads, config.kvHeads, config.vocabSize, config.maxPositions].every((n) => Number.isSafeInteger(n) && n > 0), input()).toBe(true);
        expect(config.heads % config.kvHeads).toBe(0);
        expect(config.headDim * config.heads).toBe(config.hidden);
      }),
      params(2500),
    );
    expect(accepted).toBeGreaterThan(300);
  });

  it('files shorter than the header, folders named .bin, missing files: a one-line ModelError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 27 }), fc.constantFrom('file', 'folder', 'missing'), (bytes, kind) => {
        const file = path.join(caseDir(root()), 'x.bin');
        if (kind === 'file') fs.writeFileSync(file, bytes);
        if (kind === 'folder') fs.mkdirSync(file);
        const r = outcome(() => readLlama2cHeader(file), HEADER, () => `${kind} ${preview(bytes)}`);
        expect(r.ok).toBe(false);
      }),
      params(300),
    );
  });

  it('small valid checkpoints with random weights (NaN and Inf included) import into a folder that loads', async () => {
    const cacheDir = caseDir(root());
    await fc.assert(
      fc.asyncProperty(nearValid, fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (h, seed) => {
        const want = expectedBytes(h);
        fc.pre(want !== null);
        const file = path.join(caseDir(root()), `ck${seed}.bin`);
        const floats = new Uint32Array((want! - 28) / 4);
        let s = seed;
        for (let i = 0; i < floats.length; i++) {
          s = (s * 1103515245 + 12345) >>> 0;
          // mostly ordinary floats, now and then NaN / Inf / denormal bit patterns
          floats[i] = i % 97 === 0 ? [0x7fc00000, 0x7f800000, 0xff800000, 0x00000001][s & 3] : 0x3c000000 | (s & 0x007fffff);
        }
        fs.writeFileSync(file, Buffer.concat([Buffer.from(Int32Array.from(h).buffer), Buffer.from(floats.buffer)]));
        const input = () => `${preview(h)} seed ${seed}`;
        const r = await outcomeAsync(() => importLlama2c(file, { cacheDir }), HEADER, input);
        expect(r.ok, `${input()}: ${r.ok ? '' : r.error.message}`).toBe(true);
        if (!r.ok) return;
        const config = loadModelConfig(r.value);
        const store = WeightStore.open(r.value);
        try {
          validateWeights(store, config);
        } finally {
          store.close();
        }
      }),
      params(40),
    );
  });
});
