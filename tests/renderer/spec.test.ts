// @vitest-environment happy-dom
/** The Lab form's spec strings, the fits-estimate and the mesh diagram geometry (pure). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_FORM, axisOf, fitEstimate, parseForm, specString, worldOf } from '../../renderer/src/spec';
import { BOX, meshLayout } from '../../renderer/src/meshLayout';

const form = (o: Partial<typeof DEFAULT_FORM>) => ({ ...DEFAULT_FORM, tp: 1, ...o });

describe('spec strings from the mesh form', () => {
  it('writes the canonical order and only what differs from the defaults', () => {
    expect(specString(form({}))).toBe('single');
    expect(specString(form({ tp: 2 }))).toBe('tp=2');
    expect(specString(form({ dp: 2, tp: 2 }))).toBe('dp=2,tp=2');
    expect(specString(form({ pp: 2, micro: 4 }))).toBe('pp=2,micro=4');
    expect(specString(form({ micro: 4 }))).toBe('single');
    expect(specString(form({ sp: 4, spImpl: 'ring' }))).toBe('sp=4,sp_impl=ring');
    expect(specString(form({ sp: 4, spImpl: 'usp', ulysses: 2 }))).toBe('sp=4,sp_impl=usp,ulysses=2');
    expect(specString(form({ sp: 4, spImpl: 'ulysses' }))).toBe('sp=4');
    expect(specString(form({ tp: 2, sp: 4, spImpl: 'megatron' }))).toBe('tp=2,sp_impl=megatron');
    expect(specString(form({ dp: 2, ep: 2 }))).toBe('dp=2,ep=2');
    expect(specString(form({ dp: 0, tp: 2.5 }))).toBe('single');
  });

  it('counts ranks like the engine (ep reuses ranks, megatron rides on tp)', () => {
    expect(worldOf(form({ dp: 2, pp: 2, tp: 2 }))).toBe(8);
    expect(worldOf(form({ dp: 2, ep: 2 }))).toBe(2);
    expect(worldOf(form({ tp: 2, sp: 4, spImpl: 'megatron' }))).toBe(2);
  });

  it('reads a spec back into the form', () => {
    for (const s of ['single', 'tp=2', 'dp=2,tp=2', 'pp=2,micro=4', 'sp=4,sp_impl=usp,ulysses=2', 'tp=2,sp_impl=megatron']) expect(specString(parseForm(s))).toBe(s);
  });

  it('names the axis a run scales', () => {
    expect(axisOf({ dp: 1, pp: 1, tp: 1, sp: 1, ep: 1 })).toEqual({ axis: 'single', degree: 1 });
    expect(axisOf({ dp: 1, pp: 1, tp: 4, sp: 1, ep: 1 })).toEqual({ axis: 'tp', degree: 4 });
    expect(axisOf({ dp: 2, pp: 1, tp: 2, sp: 1, ep: 1 })).toEqual({ axis: 'hybrid', degree: 4 });
  });
});

describe('fitEstimate', () => {
  const small = { sizeBytes: 621_200_000, layers: 8, hidden: 1024, heads: 16, kvHeads: 4, dtype: 'float32' };
  it('splits weights and KV over devices and adds 20%', () => {
    const kv = 2 * 8 * 4 * 64 * 4096 * 4;
    expect(fitEstimate(small, 1, 1e12).perDevice).toBeCloseTo((621_200_000 + kv) * 1.2);
    expect(fitEstimate(small, 4, 1e12).perDevice).toBeCloseTo(((621_200_000 + kv) / 4) * 1.2);
    expect(fitEstimate(small, 1, 500e6).fits).toBe(false);
    expect(fitEstimate(small, 2, 500e6).fits).toBe(true);
    expect(fitEstimate({ ...small, dtype: 'bfloat16' }, 1, 1e12).perDevice).toBeLessThan(fitEstimate(small, 1, 1e12).perDevice);
  });
});

describe('meshLayout', () => {
  const rank = (rank: number, dp: number, pp: number, tp: number, sp = 0) => ({ rank, coord: { dp, pp, sp, tp }, layers: [pp * 2, pp * 2 + 2] as [number, number], groups: {} });
  it('lays dp=2,pp=2,tp=2 out as two bands of two stages with two ranks each', () => {
    const ranks = [];
    for (let d = 0; d < 2; d++) for (let p = 0; p < 2; p++) for (let t = 0; t < 2; t++) ranks.push(rank(ranks.length, d, p, t));
    const l = meshLayout({ degrees: { dp: 2, pp: 2, tp: 2, sp: 1, ep: 1 }, ranks });
    expect(l.boxes).toHaveLength(8);
    const at = (r: number) => l.boxes.find((b) => b.rank === r)!;
    expect(at(1).x).toBe(at(0).x);
    expect(at(1).y).toBe(at(0).y + BOX.h + BOX.gap);
    expect(at(2).x).toBeGreaterThan(at(0).x + BOX.w);
    expect(at(4).y).toBeGreaterThan(at(1).y + BOX.h);
    expect(l.outlines.filter((o) => o.kind === 'replica')).toHaveLength(2);
    expect(l.outlines.filter((o) => o.kind === 'stage')).toHaveLength(4);
    expect(l.outlines.filter((o) => o.kind === 'tp')).toHaveLength(4);
    expect(l.arrows).toHaveLength(2);
    for (const b of l.boxes) expect(b.x + BOX.w).toBeLessThanOrEqual(l.width);
  });

  it('outlines SP rows and lists EP groups', () => {
    const ranks = [0, 1].map((s) => ({ ...rank(s, 0, 0, 0, s), groups: { ep: [0, 1] } }));
    const l = meshLayout({ degrees: { dp: 1, pp: 1, tp: 1, sp: 2, ep: 2 }, ranks });
    expect(l.outlines.filter((o) => o.kind === 'sp')).toHaveLength(1);
    expect(l.boxes[1].x).toBe(l.boxes[0].x + BOX.w + BOX.gap);
    expect(l.ep).toEqual([[0, 1]]);
  });
});
