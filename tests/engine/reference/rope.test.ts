import { describe, expect, it } from 'vitest';
import { ropeCosSin, ropeInvFreq } from '../../../main/engine/model/rope';
import type { ModelConfig } from '../../../main/engine/model/types';
import { ropeInPlace } from '../../../main/engine/reference/ops';
import { uniform } from './tinyModel';

type RopeFields = Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>;

describe('RoPE', () => {
  const cfg: RopeFields = { headDim: 8, ropeTheta: 10000, ropeScaling: null };

  it('rotate-half equals multiplying (x_i + i·x_{i+d/2}) by e^{i·p·θ^(-2i/d)}', () => {
    const rnd = uniform(42);
    const d = cfg.headDim;
    const half = d / 2;
    const { cos, sin } = ropeCosSin(cfg, 50);
    for (const p of [0, 1, 7, 49]) {
      const x = Float64Array.from({ length: d }, () => rnd() * 2 - 1);
      const viaKernel = Float64Array.from(x);
      ropeInPlace(viaKernel, 0, p, ropeInvFreq(cfg));
      for (let i = 0; i < half; i++) {
        const angle = p * Math.pow(cfg.ropeTheta, -(2 * i) / d);
        const re = x[i] * Math.cos(angle) - x[i + half] * Math.sin(angle);
        const im = x[i] * Math.sin(angle) + x[i + half] * Math.cos(angle);
        expect(viaKernel[i]).toBeCloseTo(re, 12);
        expect(viaKernel[i + half]).toBeCloseTo(im, 12);
        // the float32 tables the ONNX builder uses rotate the same way
        const c = cos[p * half + i];
        const s = sin[p * half + i];
        expect(Math.abs(x[i] * c - x[i + half] * s - re)).toBeLessThan(1e-6);
        expect(Math.abs(x[i + half] * c + x[i] * s - im)).toBeLessThan(1e-6);
      }
    }
    expect(cos.length).toBe(50 * half);
  });

  it('q·k after RoPE depends only on the distance between positions', () => {
    const rnd = uniform(9);
    const inv = ropeInvFreq(cfg);
    const q = Float64Array.from({ length: 8 }, () => rnd() - 0.5);
    const k = Float64Array.from({ length: 8 }, () => rnd() - 0.5);
    const dot = (m: number, n: number) => {
      const a = Float64Array.from(q);
      const b = Float64Array.from(k);
      ropeInPlace(a, 0, m, inv);
      ropeInPlace(b, 0, n, inv);
      return a.reduce((s, v, i) => s + v * b[i], 0);
    };
    expect(dot(5, 2)).toBeCloseTo(dot(13, 10), 12);
    expect(dot(5, 2)).not.toBeCloseTo(dot(5, 3), 3);
  });

  it('linear scaling divides every frequency by the factor', () => {
    const plain = ropeInvFreq(cfg);
    const scaled = ropeInvFreq({ ...cfg, ropeScaling: { type: 'linear', factor: 4 } });
    plain.forEach((f, i) => expect(scaled[i]).toBeCloseTo(f / 4, 15));
  });

  it('llama3 scaling: high frequencies kept, low divided by 8, the band between smoothed', () => {
    // Llama 3.1 8B: head_dim 128, θ = 500000, factor 8, low 1, high 4, original 8192.
    const c: RopeFields = {
      headDim: 128,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    };
    const inv = ropeInvFreq(c);
    const base = (i: number) => 1 / Math.pow(500000, (2 * i) / 128);
    // wavelength 2π/base(i): below 8192/4 = 2048 → kept; above 8192/1 → /8.
    // i = 0: wavelength 2π, high frequency, unchanged: inv = 1.
    expect(inv[0]).toBe(1);
    expect(inv[10]).toBeCloseTo(base(10), 15); // wavelength ≈ 48 < 2048
    // i = 63: wavelength ≈ 2.6e6 > 8192, divided by 8.
    expect((2 * Math.PI) / base(63)).toBeGreaterThan(8192);
    expect(inv[63]).toBeCloseTo(base(63) / 8, 18);
    // i = 30: wavelength ≈ 2.9e3, between 2048 and 8192 → smoothed.
    const wl = (2 * Math.PI) / base(30);
    expect(wl).toBeGreaterThan(2048);
    expect(wl).toBeLessThan(8192);
    const smooth = (8192 / wl - 1) / (4 - 1);
    expect(inv[30]).toBeCloseTo((1 - smooth) * (base(30) / 8) + smooth * base(30), 15);
    expect(inv[30]).toBeLessThan(base(30));
    expect(inv[30]).toBeGreaterThan(base(30) / 8);
    // the smoothed band joins the two ends monotonically
    for (let i = 1; i < inv.length; i++) expect(inv[i]).toBeLessThan(inv[i - 1]);
  });

  it('refuses an odd head dimension', () => {
    expect(() => ropeInvFreq({ headDim: 7, ropeTheta: 10000, ropeScaling: null })).toThrow(/even head dimension/);
  });
});
