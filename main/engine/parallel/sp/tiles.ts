/**
 * The pieces of SP attention's inner loop (sp/attention.ts) that are plain
 * data: flash-attention-style tiling of query and key runs, causal masks from
 * absolute positions, and the per-step tensors every layer shares (positions,
 * masks, empty accumulators), built once per step.
 */
import { ort } from '../../runtime/ort';
import type { Range } from '../split';
import { MASKED } from './graphs';
import type { SpStepPlan } from './step';

/** Running (o, lse) of one run of query rows. */
export interface Acc {
  o: ort.Tensor;
  lse: ort.Tensor;
}

/** Longest run of queries or keys one core call takes. */
export const TILE = 256;

/** Cut runs into consecutive tiles of at most TILE rows. */
export function tiles(runs: Range[]): Range[] {
  const out: Range[] = [];
  for (const [s, e] of runs) for (let a = s; a < e; a += TILE) out.push([a, Math.min(a + TILE, e)]);
  return out;
}

/** Per-step shared tensor, built once for all layers. */
export function shared(plan: SpStepPlan, key: string, make: () => ort.Tensor): ort.Tensor {
  let t = plan.cache.get(key);
  if (!t) plan.cache.set(key, (t = make()));
  return t;
}

export function positionsOf(past: number, runs: Range[]): Int32Array {
  const out = new Int32Array(runs.reduce((a, [s, e]) => a + e - s, 0));
  let i = 0;
  for (const [s, e] of runs) for (let p = s; p < e; p++) out[i++] = past + p;
  return out;
}

export function positionsTensor(B: number, past: number, runs: Range[]): ort.Tensor {
  const pos = positionsOf(past, runs);
  const out = new BigInt64Array(B * pos.length);
  for (let b = 0; b < B; b++) for (let i = 0; i < pos.length; i++) out[b * pos.length + i] = BigInt(pos[i]);
  return new ort.Tensor('int64', out, [B, pos.length]);
}

/** (Sq, T) additive mask: key j visible to query i iff pos_k[j] ≤ pos_q[i]. */
export function causalMask(qPos: Int32Array, kPos: Int32Array, allVisible: boolean): ort.Tensor {
  const m = new Float32Array(qPos.length * kPos.length);
  if (!allVisible) {
    for (let i = 0; i < qPos.length; i++) {
      const row = i * kPos.length;
      for (let j = 0; j < kPos.length; j++) if (kPos[j] > qPos[i]) m[row + j] = MASKED;
    }
  }
  return new ort.Tensor('float32', m, [qPos.length, kPos.length]);
}

export function emptyAcc(plan: SpStepPlan, rows: number, B: number, nq: number, D: number): Acc {
  return {
    o: shared(plan, `o0:${rows}:${B}:${nq}:${D}`, () => new ort.Tensor('float32', new Float32Array(rows * B * nq * D), [rows, B, nq, D])),
    lse: shared(plan, `l0:${rows}:${B}:${nq}`, () => new ort.Tensor('float32', new Float32Array(rows * B * nq).fill(MASKED), [rows, B, nq])),
  };
}

export function concatAcc(accs: Acc[], runs: Range[], rowFloats: number): Float32Array {
  if (accs.length === 1) return accs[0].o.data as Float32Array;
  const out = new Float32Array(runs[runs.length - 1][1] * rowFloats);
  accs.forEach((a, i) => out.set(a.o.data as Float32Array, runs[i][0] * rowFloats));
  return out;
}
