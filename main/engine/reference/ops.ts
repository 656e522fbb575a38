/**
 * Naive float64 kernels for the reference forward: plain loops, no tricks,
 * so that a reader can check each one against its formula. Weights stay
 * float32 (as stored); activations and accumulators are float64.
 *
 * Linear weights follow Hugging Face / PyTorch: W is (out, in) row-major and
 * y = x·Wᵀ + b.
 */

/** y (out) = x (in) · Wᵀ (+ b), W (out, in). */
export function linear(x: Float64Array, w: Float32Array, outDim: number, bias?: Float32Array): Float64Array {
  const inDim = x.length;
  if (w.length !== outDim * inDim) throw new Error(`linear: weight has ${w.length} values, expected ${outDim}×${inDim}`);
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let acc = bias ? bias[o] : 0;
    const row = o * inDim;
    for (let i = 0; i < inDim; i++) acc += x[i] * w[row + i];
    y[o] = acc;
  }
  return y;
}

/**
 * RMSNorm over x[offset, offset+w.length), in place:
 * x ← x / sqrt(mean(x²) + eps) · w.
 */
export function rmsNormInPlace(x: Float64Array, w: Float32Array, eps: number, offset = 0): void {
  const n = w.length;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[offset + i] * x[offset + i];
  const r = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) x[offset + i] = x[offset + i] * r * w[i];
}

/** RMSNorm of a copy. */
export function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  const y = Float64Array.from(x);
  rmsNormInPlace(y, w, eps);
  return y;
}

export function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

export function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/** Softmax over the whole array, in place (max subtracted first). */
export function softmaxInPlace(a: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < a.length; i++) if (a[i] > max) max = a[i];
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    a[i] = Math.exp(a[i] - max);
    sum += a[i];
  }
  for (let i = 0; i < a.length; i++) a[i] /= sum;
}

/**
 * Rotate-half RoPE of one head x[offset, offset+d) at position `pos`, in
 * place; d = 2·invFreq.length. Pairs (i, i + d/2) rotate by pos·invFreq[i].
 */
export function ropeInPlace(x: Float64Array, offset: number, pos: number, invFreq: Float64Array): void {
  const half = invFreq.length;
  for (let i = 0; i < half; i++) {
    const a = pos * invFreq[i];
    const c = Math.cos(a);
    const s = Math.sin(a);
    const x1 = x[offset + i];
    const x2 = x[offset + half + i];
    x[offset + i] = x1 * c - x2 * s;
    x[offset + half + i] = x2 * c + x1 * s;
  }
}

/** SwiGLU MLP: down(silu(gate(x)) ⊙ up(x)); gate/up (ffn, H), down (H, ffn). */
export function swiglu(x: Float64Array, gate: Float32Array, up: Float32Array, down: Float32Array, ffn: number): Float64Array {
  const g = linear(x, gate, ffn);
  const u = linear(x, up, ffn);
  for (let i = 0; i < ffn; i++) g[i] = silu(g[i]) * u[i];
  return linear(g, down, x.length);
}

/** Index of the largest value; ties go to the lowest index. */
export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
