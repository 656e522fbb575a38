/**
 * The rank side of continuous batching, as pure functions: repacking KV rows
 * for join / leave in both layouts, the per-row attention inputs of a ragged
 * step, and the refusal for plans whose blocks keep their own state.
 */
import { describe, expect, it } from 'vitest';
import { ort } from '../../main/engine/runtime/ort';
import { BatchState } from '../../main/engine/runtime/batch';
import type { Executor } from '../../main/engine/runtime/executor';
import { raggedAttentionFeeds } from '../../main/engine/runtime/feeds';
import { raggedLayout, regroup, repack, rowLens } from '../../main/engine/rank/ragged';

const H = 2;
const D = 3;

/** A batch whose cache value at (b, h, t, d) encodes its row's own token index (valid slots only; holes are NaN). */
function batch(tag: number, lens: number[], W: number, layout: 'left' | 'right', ragged: boolean): BatchState {
  const B = lens.length;
  const st = new BatchState(B);
  const k = new Float32Array(B * H * W * D).fill(NaN);
  const v = new Float32Array(B * H * W * D).fill(NaN);
  lens.forEach((len, b) => {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < len; i++) {
        const t = layout === 'left' ? W - len + i : i;
        for (let d = 0; d < D; d++) {
          k[((b * H + h) * W + t) * D + d] = tag * 1000 + b * 100 + h * 10 + i + d / 10;
          v[((b * H + h) * W + t) * D + d] = -(tag * 1000 + b * 100 + h * 10 + i + d / 10);
        }
      }
    }
  });
  st.kv.set(0, { k: new ort.Tensor('float32', k, [B, H, W, D]), v: new ort.Tensor('float32', v, [B, H, W, D]) });
  st.length = W;
  if (ragged) st.lens = [...lens];
  return st;
}

/** Token i of row b of the repacked batch, for head h and channel d. */
function at(st: BatchState, b: number, h: number, i: number, d: number, layout: 'left' | 'right'): [number, number] {
  const { k, v } = st.kv.get(0)!;
  const W = k.dims[2];
  const len = rowLens(st)[b];
  const t = layout === 'left' ? W - len + i : i;
  const o = ((b * H + h) * W + t) * D + d;
  return [(k.data as Float32Array)[o], (v.data as Float32Array)[o]];
}

describe('repack (join and leave)', () => {
  for (const layout of ['left', 'right'] as const) {
    it(`${layout} padding: rows keep their tokens in order, the batch is as wide as its longest row`, () => {
      const running = batch(1, [2, 5, 3], 5, layout, true);
      const fresh = batch(2, [4, 4], 4, layout, false); // a prefilled batch: equal lengths
      const joined = repack([{ state: running, rows: [0, 2] }, { state: fresh, rows: [0, 1] }], layout)!;
      expect(joined.batch).toBe(4);
      expect(joined.lens).toEqual([2, 3, 4, 4]);
      expect(joined.length).toBe(4);
      expect(joined.kv.get(0)!.k.dims).toEqual([4, H, 4, D]);
      const src = [
        [1, 0],
        [1, 2],
        [2, 0],
        [2, 1],
      ];
      joined.lens!.forEach((len, b) => {
        const [tag, row] = src[b];
        for (let h = 0; h < H; h++)
          for (let i = 0; i < len; i++)
            for (let d = 0; d < D; d++) {
              const want = tag * 1000 + row * 100 + h * 10 + i + d / 10;
              const [k, v] = at(joined, b, h, i, d, layout);
              expect(k).toBe(Math.fround(want));
              expect(v).toBe(Math.fround(-want));
            }
      });
      // Leaving everyone → no batch at all.
      expect(repack([{ state: joined, rows: [] }], layout)).toBeNull();
    });
  }

  it('regroup splits the running batch into contiguous micro-batches like microBatches does', () => {
    const running = batch(1, [2, 5, 3, 1, 4], 5, 'right', true);
    const mb = regroup([{ state: running, rows: [0, 1, 2, 3, 4] }], 'right', 2)!;
    expect(mb.ranges).toEqual([
      [0, 3],
      [3, 5],
    ]);
    expect(mb.states.map((s) => s.lens)).toEqual([
      [2, 5, 3],
      [1, 4],
    ]);
    expect(mb.states.map((s) => s.length)).toEqual([5, 4]);
    expect(at(mb.states[1], 1, 1, 3, 2, 'right')[0]).toBe(Math.fround(1000 + 400 + 10 + 3 + 0.2));
    // fewer rows than micro-batches: one row each
    expect(regroup([{ state: running, rows: [4] }], 'right', 2)!.ranges).toEqual([[0, 1]]);
    expect(regroup([], 'right', 2)).toBeNull();
  });

  it('refuses batches whose blocks keep state of their own', () => {
    const st = batch(1, [2], 2, 'right', false);
    st.blocks.set('sp', { kvBytes: () => 0 });
    expect(() => repack([{ state: st, rows: [0] }], 'right')).toThrow(/blocks/);
  });
});

describe('raggedAttentionFeeds', () => {
  it('gqa: per-row seqlens_k = len + S − 1, total_len = P + S', () => {
    const f = raggedAttentionFeeds([2, 5, 3], 1, 5)('gqa');
    expect(Array.from(f.seqlens_k.data as Int32Array)).toEqual([2, 5, 3]);
    expect(Array.from(f.total_len.data as Int32Array)).toEqual([6]);
  });

  it('ops: per-row positions, the causal mask, and each row’s holes masked', () => {
    const f = raggedAttentionFeeds([2, 4], 2, 4)('ops');
    expect(Array.from(f.positions.data as BigInt64Array).map(Number)).toEqual([2, 3, 4, 5]);
    expect(f.mask.dims).toEqual([2, 6]);
    const m = Array.from(f.mask.data as Float32Array);
    expect(m).toEqual([0, 0, 0, 0, 0, -Infinity, 0, 0, 0, 0, 0, 0]);
    expect(f.row_mask.dims).toEqual([2, 1, 2, 6]);
    const r = Array.from(f.row_mask.data as Float32Array);
    // row 0 (2 tokens, left-padded in width 4): slots 0 and 1 are holes, for both queries
    expect(r.slice(0, 12)).toEqual([-Infinity, -Infinity, 0, 0, 0, 0, -Infinity, -Infinity, 0, 0, 0, 0]);
    // row 1 is full
    expect(r.slice(12)).toEqual(new Array(12).fill(0));
  });
});

describe('raggedLayout', () => {
  it('gqa → right padding, ops → left padding, blocks → refused with a reason', () => {
    const exec = (kernel: 'gqa' | 'ops', block = false) =>
      ({ items: block ? [{ kind: 'block' }] : [{ kernel }], segments: [{ kernel }] }) as unknown as Executor;
    expect(raggedLayout(exec('gqa')).layout).toBe('right');
    expect(raggedLayout(exec('ops')).layout).toBe('left');
    const r = raggedLayout(exec('gqa', true));
    expect(r.layout).toBeNull();
    expect(r.reason).toMatch(/blocks/);
  });
});
