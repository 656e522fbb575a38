import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bf16ToNumber, f16BitsToF32Bits, f32BitsToBf16Bits, f32BitsToF16Bits, f16ToNumber, numberToBf16, numberToF16,
} from '../../../main/engine/model/halfprec';
import { SafetensorsFile } from '../../../main/engine/model/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../../main/engine/model/safetensors-write';
import { modelError, tmpDir } from './helpers';

describe('half-precision conversions', () => {
  it('every f16 widens exactly and narrows back to itself', () => {
    for (let h = 0; h < 65536; h++) {
      const back = f32BitsToF16Bits(f16BitsToF32Bits(h));
      const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNan) expect(Number.isNaN(f16ToNumber(h))).toBe(true);
      else if (back !== h) expect.fail(`f16 ${h.toString(16)} came back as ${back.toString(16)}`);
    }
  });

  it('every bf16 widens exactly and narrows back to itself', () => {
    for (let b = 0; b < 65536; b++) {
      const isNan = (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
      const back = f32BitsToBf16Bits((b << 16) >>> 0);
      if (isNan) expect(Number.isNaN(bf16ToNumber(back))).toBe(true);
      else if (back !== b) expect.fail(`bf16 ${b.toString(16)} came back as ${back.toString(16)}`);
    }
  });

  it('special values', () => {
    expect(f16ToNumber(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16ToNumber(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16ToNumber(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16ToNumber(0x7bff)).toBe(65504);
    expect(f16ToNumber(0x7c00)).toBe(Infinity);
    expect(f16ToNumber(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16ToNumber(0x8000), -0)).toBe(true);
    expect(numberToF16(65519)).toBe(0x7bff); // below the halfway point to 65536
    expect(numberToF16(65520)).toBe(0x7c00); // halfway rounds to even = inf
    expect(numberToF16(1e-8)).toBe(0); // under half the smallest subnormal
    expect(numberToF16(2 ** -25)).toBe(0); // exactly half: ties to even (0)
    expect(numberToF16(1.5 * 2 ** -25)).toBe(1);
    expect(numberToF16(1 + 2 ** -11)).toBe(0x3c00); // tie → even mantissa
    expect(numberToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(numberToF16(NaN) & 0x7e00).toBe(0x7e00);
    expect(numberToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(numberToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(numberToBf16(Infinity)).toBe(0x7f80);
    expect(Number.isNaN(bf16ToNumber(numberToBf16(NaN)))).toBe(true);
    expect(bf16ToNumber(numberToBf16(3.4e38))).toBe(Infinity); // rounds past the largest bf16
  });

  it('narrowing picks the nearest representable value', () => {
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (let i = 0; i < 20000; i++) {
      const x = Math.fround((rnd() - 0.5) * 2 ** Math.floor(rnd() * 40 - 28));
      for (const [to, from] of [[numberToF16, f16ToNumber], [numberToBf16, bf16ToNumber]] as const) {
        const h = to(x);
        const err = Math.abs(from(h) - x);
        for (const n of [h - 1, h + 1]) {
          const v = from(n & 0xffff);
          if (Number.isFinite(v) && Math.sign(v) === Math.sign(x)) expect(err).toBeLessThanOrEqual(Math.abs(v - x));
        }
      }
    }
  });
});

const SPECIALS = [0, -0, 1, -2.5, 65504, 1e-7, 2 ** -24, 3.0e-39, Infinity, -Infinity, NaN, 123456.789, -1e30];

function tensor(name: string, dtype: TensorToWrite['dtype'], shape: number[], f: (i: number) => number): TensorToWrite {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, dtype, shape, data: Float32Array.from({ length: n }, (_, i) => f(i)) };
}

/** What a value becomes after a trip through `dtype`. */
function through(dtype: string, x: number): number {
  if (dtype === 'F16') return f16ToNumber(numberToF16(x));
  if (dtype === 'BF16') return bf16ToNumber(numberToBf16(x));
  return Math.fround(x);
}

describe('safetensors round trip', () => {
  it('F32 / F16 / BF16 incl. special values, metadata, exact header layout', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'm.safetensors');
    const tensors = (['F32', 'F16', 'BF16'] as const).map((d) => tensor(`t.${d}`, d, [SPECIALS.length], (i) => SPECIALS[i]));
    tensors.push(tensor('matrix', 'F32', [3, 4], (i) => i * 0.5));
    tensors.push(tensor('empty', 'F16', [0, 4], () => 0));
    tensors.push(tensor('scalar', 'BF16', [], () => 7));
    await writeSafetensors(file, tensors, { format: 'pt', note: 'hi' });
    expect(fs.readdirSync(dir)).toEqual(['m.safetensors']); // no temp left behind

    const buf = fs.readFileSync(file);
    const headerLen = Number(buf.readBigUInt64LE(0));
    expect(headerLen % 8).toBe(0);
    const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString());
    expect(header.__metadata__).toEqual({ format: 'pt', note: 'hi' });
    expect(header['t.F16']).toEqual({ dtype: 'F16', shape: [SPECIALS.length], data_offsets: [SPECIALS.length * 4, SPECIALS.length * 6] });

    const st = SafetensorsFile.open(file);
    expect(st.metadata).toEqual({ format: 'pt', note: 'hi' });
    expect(st.names().sort()).toEqual(['empty', 'matrix', 'scalar', 't.BF16', 't.F16', 't.F32']);
    for (const d of ['F32', 'F16', 'BF16']) {
      const got = st.readF32(`t.${d}`);
      const want = SPECIALS.map((x) => through(d, x));
      expect([...got].map((x) => (Object.is(x, -0) ? '-0' : x))).toEqual(want.map((x) => (Object.is(x, -0) ? '-0' : x)));
    }
    expect([...st.readF32('matrix')]).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5]);
    expect(st.readF32('empty').length).toBe(0);
    expect([...st.readF32('scalar')]).toEqual([7]);
    expect(st.shape('matrix')).toEqual([3, 4]);
    st.close();
  });

  it('row and column slices, for every dtype, across read chunks', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 's.safetensors');
    // 2100 x 1100 f32 = 9.2 MB: more than one 8 MB read chunk
    const R = 2100, C = 1100;
    const val = (i: number) => (i % 251) - 125; // exact in bf16 too
    await writeSafetensors(file, [
      tensor('big32', 'F32', [R, C], val),
      tensor('big16', 'F16', [R, C], val),
      tensor('bigbf', 'BF16', [R, C], val),
      tensor('vec', 'BF16', [10], (i) => i),
    ]);
    const st = SafetensorsFile.open(file);
    for (const name of ['big32', 'big16', 'bigbf']) {
      const all = st.readF32(name);
      expect(all[5 * C + 7]).toBe(val(5 * C + 7));
      const rows = st.readF32(name, { rows: [3, 2050] });
      expect(rows.length).toBe(2047 * C);
      expect(rows[0]).toBe(val(3 * C));
      expect(rows[rows.length - 1]).toBe(val(2050 * C - 1));
      const block = st.readF32(name, { rows: [1, 2099], cols: [100, 612] });
      expect(block.length).toBe(2098 * 512);
      for (const [r, c] of [[0, 0], [7, 511], [2097, 300], [1000, 5]]) {
        expect(block[r * 512 + c]).toBe(val((r + 1) * C + c + 100));
      }
      const cols = st.readF32(name, { cols: [C - 1, C] });
      expect(cols.length).toBe(R);
      expect(cols[R - 1]).toBe(val(R * C - 1));
    }
    expect([...st.readF32('vec', { rows: [2, 5] })]).toEqual([2, 3, 4]);
    let e = await modelError(() => st.readF32('vec', { rows: [5, 11] }), 'shape-mismatch');
    expect(e.message).toContain("'vec'");
    e = await modelError(() => st.readF32('vec', { cols: [0, 1] }), 'shape-mismatch');
    expect(e.message).toContain('2-D');
    await modelError(() => st.readF32('big32', { cols: [10, 5] }), 'shape-mismatch');
    await modelError(() => st.readF32('nope'), 'tensor-missing');
    st.close();
  });

  it('a failing writer leaves neither the file nor a temp file', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'x.safetensors');
    const bad: TensorToWrite = { name: 'a', dtype: 'F32', shape: [2], data: () => { throw new Error('generator died'); } };
    await expect(writeSafetensors(file, [bad])).rejects.toThrow('generator died');
    await expect(writeSafetensors(file, [{ name: 'b', dtype: 'F32', shape: [3], data: new Float32Array(2) }])).rejects.toThrow(/needs 3/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

/** Writes a file with a hand-made header and `dataBytes` bytes of data. */
function rawFile(dir: string, header: unknown, dataBytes: number, headerText?: string): string {
  const json = Buffer.from(headerText ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(dir, `raw-${Math.random().toString(36).slice(2)}.safetensors`);
  fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return file;
}

describe('corrupt files are ModelErrors naming the file and tensor', () => {
  it('truncated file', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'model.safetensors');
    await writeSafetensors(file, [tensor('a', 'F32', [100], (i) => i), tensor('model.norm.weight', 'F32', [1000], () => 1)]);
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 100);
    const e = await modelError(() => SafetensorsFile.open(file), 'safetensors-corrupt');
    expect(e.message).toContain(file);
    expect(e.message).toContain("'model.norm.weight'");
    expect(e.message).toContain(`ends at byte ${size}`);
    expect(e.message).toContain(`has ${size - 100} bytes`);
    expect(e.message).toContain('re-download');
  });

  it('too short, header longer than file, bad JSON, not an object', async () => {
    const dir = tmpDir();
    const short = path.join(dir, 'short.safetensors');
    fs.writeFileSync(short, Buffer.from([1, 2, 3]));
    expect((await modelError(() => SafetensorsFile.open(short), 'safetensors-corrupt')).message).toContain('too short');
    const long = path.join(dir, 'long.safetensors');
    const b = Buffer.alloc(20);
    b.writeBigUInt64LE(1000n);
    fs.writeFileSync(long, b);
    expect((await modelError(() => SafetensorsFile.open(long), 'safetensors-corrupt')).message).toContain('header length says 1000 bytes');
    const bad = rawFile(dir, null, 0, '{"a": {"dtype": "F32",');
    const e = await modelError(() => SafetensorsFile.open(bad), 'safetensors-corrupt');
    expect(e.message).toContain('not valid JSON');
    expect(e.message).toContain(bad);
    await modelError(() => SafetensorsFile.open(rawFile(dir, [1, 2], 0)), 'safetensors-corrupt');
  });

  it('offsets out of range, not matching the shape, overlapping; unknown dtype', async () => {
    const dir = tmpDir();
    let e = await modelError(() => SafetensorsFile.open(rawFile(dir, { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8)), 'safetensors-corrupt');
    expect(e.message).toContain("tensor 'w'");
    expect(e.message).toContain('truncated');
    e = await modelError(() => SafetensorsFile.open(rawFile(dir, { w: { dtype: 'F16', shape: [4], data_offsets: [0, 16] } }, 16)), 'safetensors-corrupt');
    expect(e.message).toContain('needs 8');
    e = await modelError(() => SafetensorsFile.open(rawFile(dir, {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
    }, 24)), 'safetensors-corrupt');
    expect(e.message).toMatch(/'a' and 'b' overlap/);
    e = await modelError(() => SafetensorsFile.open(rawFile(dir, { w: { dtype: 'F32', shape: [4], data_offsets: [16, 0] } }, 16)), 'safetensors-corrupt');
    expect(e.message).toContain('data_offsets');
    e = await modelError(() => SafetensorsFile.open(rawFile(dir, { q: { dtype: 'Q4_K', shape: [4], data_offsets: [0, 2] } }, 2)), 'unsupported-dtype');
    expect(e.message).toContain("tensor 'q'");
    const ints = SafetensorsFile.open(rawFile(dir, { i: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, 16));
    await modelError(() => ints.readF32('i'), 'unsupported-dtype');
    ints.close();
    await modelError(() => SafetensorsFile.open(path.join(dir, 'missing.safetensors')), 'weights-missing');
  });
});
