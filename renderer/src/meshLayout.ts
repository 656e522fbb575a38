/**
 * Where the Lab view's mesh diagram draws each rank and group, from the
 * engine's SpecCheck (ranks with their mesh coordinates and groups). Pure
 * geometry, tested without a DOM:
 *   - one band per data-parallel replica (top to bottom),
 *   - inside it one column per pipeline stage (left to right, arrows between),
 *   - inside a stage, sp sub-columns × tp rows: a TP group is a column outline,
 *     an SP group a row outline.
 * EP groups are listed under the picture (they reuse the same ranks).
 */
import type { SpecCheck } from '../../main/lab/contract';

export const BOX = { w: 64, h: 40, gap: 10, pad: 12, stageGap: 34, bandGap: 18, label: 64 };

export interface MeshBox {
  rank: number;
  x: number;
  y: number;
  layers: [number, number];
}
export interface MeshOutline {
  kind: 'tp' | 'sp' | 'stage' | 'replica';
  x: number;
  y: number;
  w: number;
  h: number;
  label?: string;
}
export interface MeshLayout {
  width: number;
  height: number;
  boxes: MeshBox[];
  outlines: MeshOutline[];
  arrows: { x1: number; y: number; x2: number }[];
  ep: number[][];
}

export function meshLayout(c: Pick<SpecCheck, 'degrees' | 'ranks'>): MeshLayout {
  const { dp, pp, tp } = c.degrees;
  const sp = Math.max(1, ...c.ranks.map((r) => r.coord.sp + 1));
  const stageW = sp * BOX.w + (sp - 1) * BOX.gap + 2 * BOX.pad;
  const stageH = tp * BOX.h + (tp - 1) * BOX.gap + 2 * BOX.pad;
  const bandH = stageH + 2 * BOX.pad;
  const x0 = dp > 1 ? BOX.label : 0;
  const stageX = (s: number) => x0 + BOX.pad + s * (stageW + BOX.stageGap);
  const bandY = (d: number) => d * (bandH + BOX.bandGap);
  const boxes: MeshBox[] = c.ranks.map((r) => ({
    rank: r.rank,
    x: stageX(r.coord.pp) + BOX.pad + r.coord.sp * (BOX.w + BOX.gap),
    y: bandY(r.coord.dp) + 2 * BOX.pad + r.coord.tp * (BOX.h + BOX.gap),
    layers: r.layers,
  }));
  const outlines: MeshOutline[] = [];
  const arrows: MeshLayout['arrows'] = [];
  for (let d = 0; d < dp; d++) {
    outlines.push({ kind: 'replica', x: 0, y: bandY(d), w: x0 + pp * stageW + (pp - 1) * BOX.stageGap + 2 * BOX.pad, h: bandH, label: dp > 1 ? `dp ${d}` : undefined });
    for (let s = 0; s < pp; s++) {
      const y = bandY(d) + BOX.pad;
      outlines.push({ kind: 'stage', x: stageX(s), y, w: stageW, h: stageH, label: pp > 1 ? `pp ${s}` : undefined });
      if (s > 0) arrows.push({ x1: stageX(s - 1) + stageW, x2: stageX(s), y: y + stageH / 2 });
      if (tp > 1) for (let q = 0; q < sp; q++) outlines.push({ kind: 'tp', x: stageX(s) + BOX.pad + q * (BOX.w + BOX.gap) - 4, y: y + BOX.pad - 4, w: BOX.w + 8, h: stageH - 2 * BOX.pad + 8 });
      if (sp > 1) for (let t = 0; t < tp; t++) outlines.push({ kind: 'sp', x: stageX(s) + BOX.pad - 6, y: y + BOX.pad + t * (BOX.h + BOX.gap) - 6, w: stageW - 2 * BOX.pad + 12, h: BOX.h + 12 });
    }
  }
  const ep = [...new Set(c.ranks.map((r) => JSON.stringify(r.groups.ep ?? [])))].map((s) => JSON.parse(s) as number[]).filter((g) => g.length > 1);
  const width = Math.max(...outlines.map((o) => o.x + o.w), x0) + 4;
  const height = Math.max(...outlines.map((o) => o.y + o.h), 0) + 4;
  return { width, height, boxes, outlines, arrows, ep };
}
