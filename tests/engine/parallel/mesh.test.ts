import { describe, expect, it } from 'vitest';
import { buildMesh, groupOf, Mesh, type GroupKind } from '../../../main/engine/parallel/mesh';
import { parseSpec } from '../../../main/engine/parallel/spec';
import { divisors, kvHeadRange, splitEven, splitSizes } from '../../../main/engine/parallel/split';

const KINDS: GroupKind[] = ['dp', 'pp', 'sp', 'tp', 'ep', 'ulysses', 'ring'];

/** Every rank lies in exactly one group of each kind, and every member of a group agrees on it. */
function checkConsistent(mesh: Mesh): void {
  for (const kind of KINDS) {
    const groups = mesh.groups(kind);
    const seen = groups.flat().sort((a, b) => a - b);
    expect(seen, kind).toEqual(Array.from({ length: mesh.world }, (_, r) => r));
    for (const g of groups) {
      expect([...g].sort((a, b) => a - b), kind).toEqual(g);
      for (const member of g) expect(groupOf(mesh.place(member), kind), kind).toEqual(g);
    }
  }
  for (const p of mesh.ranks) {
    expect(mesh.rankOf(p.coord)).toBe(p.rank);
    expect(p.epGroup[p.epRank]).toBe(p.rank);
    // An EP group never crosses a pipeline stage.
    for (const r of p.epGroup) expect(mesh.place(r).coord.pp).toBe(p.coord.pp);
    if (p.next !== null) expect(mesh.place(p.next).prev).toBe(p.rank);
  }
}

describe('Mesh', () => {
  it('dp=2,tp=2: tp ranks are neighbours', () => {
    const m = buildMesh(parseSpec('dp=2,tp=2'));
    checkConsistent(m);
    expect(m.groups('tp')).toEqual([[0, 1], [2, 3]]);
    expect(m.groups('dp')).toEqual([[0, 2], [1, 3]]);
    expect(m.groups('pp')).toEqual([[0], [1], [2], [3]]);
    expect(m.place(3).coord).toEqual({ dp: 1, pp: 0, sp: 0, tp: 1 });
    expect(m.place(3)).toMatchObject({ prev: null, next: null, isFirstStage: true, isLastStage: true });
    expect(m.describe()).toBe('TP(2)-SP(1)-PP(1)-DP(2)');
  });

  it('pp=2,tp=2: stages and neighbours', () => {
    const m = buildMesh(parseSpec('pp=2,tp=2'));
    checkConsistent(m);
    expect(m.groups('tp')).toEqual([[0, 1], [2, 3]]);
    expect(m.groups('pp')).toEqual([[0, 2], [1, 3]]);
    expect(m.place(0)).toMatchObject({ prev: null, next: 2, isFirstStage: true, isLastStage: false });
    expect(m.place(3)).toMatchObject({ prev: 1, next: null, isFirstStage: false, isLastStage: true });
    expect(m.describe()).toBe('TP(2)-SP(1)-PP(2)-DP(1)');
  });

  it('dp=2,pp=2,tp=2: picotron layout', () => {
    const m = buildMesh(parseSpec('dp=2,pp=2,tp=2'));
    checkConsistent(m);
    expect(m.groups('tp')).toEqual([[0, 1], [2, 3], [4, 5], [6, 7]]);
    expect(m.groups('pp')).toEqual([[0, 2], [1, 3], [4, 6], [5, 7]]);
    expect(m.groups('dp')).toEqual([[0, 4], [1, 5], [2, 6], [3, 7]]);
    expect(m.place(6).coord).toEqual({ dp: 1, pp: 1, sp: 0, tp: 0 });
    expect(m.place(6).prev).toBe(4);
    expect(m.describe()).toBe('TP(2)-SP(1)-PP(2)-DP(2)');
  });

  it('dp=2,ep=2: the EP group spans the replicas', () => {
    const m = buildMesh(parseSpec('dp=2,ep=2'));
    checkConsistent(m);
    expect(m.groups('ep')).toEqual([[0, 1]]);
    expect(m.groups('dp')).toEqual([[0, 1]]);
    expect(m.place(1).epRank).toBe(1);
    expect(m.describe()).toBe('TP(1)-SP(1)-PP(1)-DP(2)-EP(2)');
  });

  it('tp=2,ep=2: the EP group is the TP group', () => {
    const m = buildMesh(parseSpec('tp=2,ep=2'));
    checkConsistent(m);
    expect(m.groups('ep')).toEqual(m.groups('tp'));
  });

  it('ep blocks stay inside one stage', () => {
    const m = buildMesh(parseSpec('dp=2,pp=2,tp=2,ep=2'));
    checkConsistent(m);
    expect(m.groups('ep')).toEqual([[0, 1], [2, 3], [4, 5], [6, 7]]);
    const m4 = buildMesh(parseSpec('dp=2,pp=2,tp=2,ep=4'));
    checkConsistent(m4);
    expect(m4.groups('ep')).toEqual([[0, 1, 4, 5], [2, 3, 6, 7]]);
  });

  it('sp groups and the usp ring × ulysses grid', () => {
    const m = buildMesh(parseSpec('tp=2,sp=4,sp_impl=usp,ulysses=2'));
    checkConsistent(m);
    expect(m.groups('sp')).toEqual([[0, 2, 4, 6], [1, 3, 5, 7]]);
    expect(m.groups('ulysses')).toEqual([[0, 2], [1, 3], [4, 6], [5, 7]]);
    expect(m.groups('ring')).toEqual([[0, 4], [1, 5], [2, 6], [3, 7]]);
    const ring = buildMesh(parseSpec('sp=4,sp_impl=ring'));
    expect(ring.groups('ring')).toEqual([[0, 1, 2, 3]]);
    expect(ring.groups('ulysses')).toEqual([[0], [1], [2], [3]]);
    const uly = buildMesh(parseSpec('sp=4'));
    expect(uly.groups('ulysses')).toEqual([[0, 1, 2, 3]]);
    expect(uly.groups('ring')).toEqual([[0], [1], [2], [3]]);
  });

  it('single is one rank in singleton groups', () => {
    const m = buildMesh(parseSpec('single'));
    checkConsistent(m);
    expect(m.world).toBe(1);
    expect(m.place(0)).toMatchObject({ prev: null, next: null, isFirstStage: true, isLastStage: true, epRank: 0 });
    expect(() => m.place(1)).toThrow(/rank 1 is outside this mesh of 1 ranks/);
  });

  it('layer ranges are contiguous, half-open, first stages longer', () => {
    const m = buildMesh(parseSpec('pp=3'));
    expect([0, 1, 2].map((s) => m.layerRange(s, 8))).toEqual([[0, 3], [3, 6], [6, 8]]);
    expect([0, 1, 2].map((s) => m.layerRange(s, 9))).toEqual([[0, 3], [3, 6], [6, 9]]);
    expect(() => buildMesh(parseSpec('pp=4')).layerRange(0, 3)).toThrow(/pp=4 exceeds the 3 layers/);
  });
});

describe('split helpers', () => {
  it('splitEven covers [0, n) with sizes differing by at most one', () => {
    for (let n = 0; n <= 20; n++) {
      for (let parts = 1; parts <= 7; parts++) {
        let next = 0;
        for (let i = 0; i < parts; i++) {
          const [s, e] = splitEven(n, parts, i);
          expect(s).toBe(next);
          expect(e - s).toBeGreaterThanOrEqual(Math.floor(n / parts));
          expect(e - s).toBeLessThanOrEqual(Math.ceil(n / parts));
          next = e;
        }
        expect(next).toBe(n);
      }
    }
    expect(splitSizes(10, 4)).toEqual([3, 3, 2, 2]);
    expect(() => splitEven(4, 2, 2)).toThrow(RangeError);
  });

  it('kvHeadRange gives the KV heads a query range reads', () => {
    // 8 heads, 4 KV heads (group 2): tp=8 → each rank one query head, one KV head (replicated twice).
    expect(kvHeadRange(8, 4, 0, 1)).toEqual([0, 1]);
    expect(kvHeadRange(8, 4, 1, 2)).toEqual([0, 1]);
    expect(kvHeadRange(8, 4, 4, 8)).toEqual([2, 4]);
    // 12 heads, 4 KV heads (group 3), tp=4: rank 1 holds q 3..5 → KV 1 only; tp=6: rank 1 holds q 2..3 → KV 0..1.
    expect(kvHeadRange(12, 4, 3, 6)).toEqual([1, 2]);
    expect(kvHeadRange(12, 4, 2, 4)).toEqual([0, 2]);
    expect(divisors(12)).toEqual([1, 2, 3, 4, 6, 12]);
  });
});
