/**
 * Rotary position embedding tables (RoFormer, Su et al. 2021), shared by the
 * ONNX graph builders and the plain-TypeScript reference so both rotate with
 * the same numbers.
 *
 *   inv_freq[i] = θ^(-2i/d)             i = 0 … d/2-1, d = headDim
 *   angle(p, i) = p · inv_freq[i]
 *
 * Rotation is "rotate half" (Hugging Face Llama, non-interleaved): element i
 * pairs with element i + d/2,
 *
 *   out[i]       = x[i]·cos − x[i+d/2]·sin
 *   out[i+d/2]   = x[i+d/2]·cos + x[i]·sin
 *
 * Scaling (transformers' modeling_rope_utils):
 *   linear: inv_freq / factor.
 *   llama3: wavelengths longer than original/lowFreqFactor are divided by
 *     factor, shorter than original/highFreqFactor are kept, and the band
 *     between is interpolated with smooth = (original/wavelen − low)/(high − low):
 *     (1 − smooth)·inv/factor + smooth·inv.
 *
 * Computed in float64 (transformers uses float32) and rounded once to float32
 * in the tables.
 */
import type { ModelConfig } from './types';

type RopeFields = Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>;

/** Inverse frequencies, (headDim/2), scaling applied. */
export function ropeInvFreq(config: RopeFields): Float64Array {
  const d = config.headDim;
  if (d % 2 !== 0) throw new Error(`RoPE needs an even head dimension, got headDim=${d}`);
  const half = d / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(config.ropeTheta, (2 * i) / d);

  const s = config.ropeScaling;
  if (s === null) return inv;
  if (s.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= s.factor;
    return inv;
  }
  const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen > lowFreqWavelen) {
      inv[i] /= s.factor;
    } else if (wavelen >= highFreqWavelen) {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = ((1 - smooth) * inv[i]) / s.factor + smooth * inv[i];
    }
  }
  return inv;
}

/** cos / sin of every angle, each (maxPositions, headDim/2) row-major. */
export function ropeCosSin(config: RopeFields, maxPositions: number): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInvFreq(config);
  const half = inv.length;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * inv[i];
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}
