/**
 * Weight layouts for the graphs: Hugging Face stores linear weights as
 * (out, in); every projection in our graphs is MatMul(x, W) with W (in, out),
 * so each weight is transposed once, when a rank loads its shard.
 */

/** (rows, cols) row-major → (cols, rows), blocked for cache locality. */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(rows * cols);
  transposeInto(dst, rows, 0, src, rows, cols);
  return dst;
}

/** Stack HF (out_i, in) weights along out, transposed: → (in, Σ out_i). */
export function transposeConcat(parts: Float32Array[], inDim: number): Float32Array {
  const outDims = parts.map((p) => p.length / inDim);
  const total = outDims.reduce((a, b) => a + b, 0);
  const dst = new Float32Array(inDim * total);
  let off = 0;
  parts.forEach((p, i) => {
    transposeInto(dst, total, off, p, outDims[i], inDim);
    off += outDims[i];
  });
  return dst;
}

/** Concatenate vectors (biases) end to end. */
export function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** dst[c, colOffset + r] = src[r, c]; dst has `dstCols` columns. */
function transposeInto(dst: Float32Array, dstCols: number, colOffset: number, src: Float32Array, rows: number, cols: number): void {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) {
        const so = r * cols;
        for (let c = c0; c < c1; c++) dst[c * dstCols + colOffset + r] = src[so + c];
      }
    }
  }
}
