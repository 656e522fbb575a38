/**
 * Exact conversions between float32 and the two 16-bit float formats found in
 * checkpoints: IEEE binary16 ("F16") and bfloat16 ("BF16").
 *
 * Widening (16 → 32) is exact: bf16 is the top half of an f32 (a shift), f16
 * goes through a 65536-entry table of f32 bit patterns built once (256 KiB),
 * so subnormals, ±inf and NaN come out right and no per-element work but one
 * load is done. Narrowing (32 → 16) rounds to nearest, ties to even, like
 * PyTorch / numpy; NaN stays NaN (quiet), overflow becomes ±inf.
 *
 * Everything works on bit patterns through Uint32Array / Uint16Array views,
 * so NaN payloads are never canonicalised by a float round trip.
 */

/** f16 bit pattern → f32 bit pattern (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: mant × 2^-24; normalise so the leading 1 becomes implicit
  let e = 113; // f32 biased exponent of 2^-14, the value of bit 10
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** f32 bit pattern → f16 bit pattern, round to nearest even. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const he = exp - 112; // half-precision biased exponent
  if (he >= 0x1f) return sign | 0x7c00;
  if (he <= 0) {
    // result is a half subnormal (or zero, or rounds up to the smallest normal):
    // value × 2^24 = M × 2^-(126 - exp) with M the 24-bit significand
    const shift = 126 - exp;
    if (shift > 24) return sign;
    const full = mant | 0x800000;
    const m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (rem > half || (rem === half && (m & 1) !== 0) ? m + 1 : m);
  }
  let h = (he << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent is correct (may give inf)
  return sign | h;
}

/** f32 bit pattern → bf16 bit pattern, round to nearest even. */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Uint32Array | null = null;

/** The f16 → f32-bits lookup table, built on first use. */
function f16ToF32Table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** Widens `src` (f16 bits) into `dst[dstOffset..]`. */
export function f16ToF32(src: Uint16Array, dst: Float32Array, dstOffset = 0): void {
  const table = f16ToF32Table();
  const out = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset * 4, src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
}

/** Widens `src` (bf16 bits) into `dst[dstOffset..]`. */
export function bf16ToF32(src: Uint16Array, dst: Float32Array, dstOffset = 0): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset + dstOffset * 4, src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
}

/** Narrows `src` to f16 bits into `dst` (same length). */
export function f32ToF16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToF16Bits(bits[i]);
}

/** Narrows `src` to bf16 bits into `dst` (same length). */
export function f32ToBf16(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToBf16Bits(bits[i]);
}

/** Scalar helpers (tests, one-off values). */
const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);
export function f16ToNumber(h: number): number {
  scratchBits[0] = f16BitsToF32Bits(h);
  return scratch[0];
}
export function numberToF16(x: number): number {
  scratch[0] = x;
  return f32BitsToF16Bits(scratchBits[0]);
}
export function bf16ToNumber(b: number): number {
  scratchBits[0] = (b << 16) >>> 0;
  return scratch[0];
}
export function numberToBf16(x: number): number {
  scratch[0] = x;
  return f32BitsToBf16Bits(scratchBits[0]);
}
