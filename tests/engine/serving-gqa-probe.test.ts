/**
 * Probe: how onnxruntime's CPU GroupQueryAttention handles a ragged batch —
 * rows with different past lengths in one right-padded KV buffer. Continuous
 * batching (main/engine/rank/serving-pool.ts) relies on what this test pins down:
 *   - row b's new token is written at position seqlens_k[b] + 1 − S of the
 *     present buffer (its own past length), not at the buffer's end;
 *   - row b attends only to keys [0, seqlens_k[b]] (the padding after its
 *     past is never read, whatever it holds);
 *   - RoPE rotates row b's new token at its own position (its past length);
 *   - present width = max(past width, total_len).
 * Checked by comparing a batch of two rows (past 3 and past 5, the short one
 * padded with garbage) with each row run alone.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../main/engine/graph/onnx';
import { ort, createSession } from '../../main/engine/runtime/ort';

const N = 4; // query heads
const KV = 2;
const D = 16;
const MAXSEQ = 32;

function gqaGraph(): Uint8Array {
  const g = new GraphBuilder('gqa-probe');
  const q = g.input('q', 'float32', ['b', 's', N * D]);
  const k = g.input('k', 'float32', ['b', 's', KV * D]);
  const v = g.input('v', 'float32', ['b', 's', KV * D]);
  const pk = g.input('pk', 'float32', ['b', KV, 'p', D]);
  const pv = g.input('pv', 'float32', ['b', KV, 'p', D]);
  const sl = g.input('seqlens_k', 'int32', ['b']);
  const tl = g.input('total_len', 'int32', []);
  const cos = new Float32Array(MAXSEQ * (D / 2));
  const sin = new Float32Array(MAXSEQ * (D / 2));
  for (let p = 0; p < MAXSEQ; p++) {
    for (let i = 0; i < D / 2; i++) {
      const a = p / Math.pow(10000, (2 * i) / D);
      cos[p * (D / 2) + i] = Math.cos(a);
      sin[p * (D / 2) + i] = Math.sin(a);
    }
  }
  const c = g.init('cos', cos, [MAXSEQ, D / 2]);
  const s = g.init('sin', sin, [MAXSEQ, D / 2]);
  g.node('GroupQueryAttention', [q, k, v, pk, pv, sl, tl, c, s], ['out', 'present_k', 'present_v'], { num_heads: N, kv_num_heads: KV, do_rotary: 1, rotary_interleaved: 0, scale: { float: 1 / Math.sqrt(D) } }, 'com.microsoft');
  g.output('out', 'float32', ['b', 's', N * D]);
  g.output('present_k', 'float32', ['b', KV, 't', D]);
  g.output('present_v', 'float32', ['b', KV, 't', D]);
  return g.toBytes();
}

function rand(n: number, seed: number): Float32Array {
  let x = seed;
  return Float32Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648 - 0.5;
  });
}

/** (1, KV, len, D) past of one row, taken from a (KV, width, D) block. */
function pastOf(block: Float32Array, width: number, len: number): Float32Array {
  const out = new Float32Array(KV * len * D);
  for (let h = 0; h < KV; h++) out.set(block.subarray(h * width * D, (h * width + len) * D), h * len * D);
  return out;
}

describe('onnxruntime CPU GroupQueryAttention on a ragged, right-padded batch', () => {
  it('places each row at its own past length and attends only to its own keys', async () => {
    const sess = await createSession(gqaGraph(), { device: 'cpu', threads: 1, spin: false });
    const lens = [3, 5];
    const W = 5; // buffer width = longest past
    const S = 1;
    const q = rand(2 * N * D, 1);
    const k = rand(2 * KV * D, 2);
    const v = rand(2 * KV * D, 3);
    const blocks = [rand(KV * W * D, 4), rand(KV * W * D, 5)];
    // Row 0's padding [3, 5) holds garbage that must never be read.
    for (let h = 0; h < KV; h++) blocks[0].fill(1e3, (h * W + lens[0]) * D, (h * W + W) * D);
    const pk = new Float32Array(2 * KV * W * D);
    const pv = new Float32Array(2 * KV * W * D);
    pk.set(blocks[0], 0);
    pk.set(blocks[1], KV * W * D);
    const vblocks = [rand(KV * W * D, 6), rand(KV * W * D, 7)];
    for (let h = 0; h < KV; h++) vblocks[0].fill(-1e3, (h * W + lens[0]) * D, (h * W + W) * D);
    pv.set(vblocks[0], 0);
    pv.set(vblocks[1], KV * W * D);

    const batch = await sess.run({
      q: new ort.Tensor('float32', q, [2, S, N * D]),
      k: new ort.Tensor('float32', k, [2, S, KV * D]),
      v: new ort.Tensor('float32', v, [2, S, KV * D]),
      pk: new ort.Tensor('float32', pk, [2, KV, W, D]),
      pv: new ort.Tensor('float32', pv, [2, KV, W, D]),
      seqlens_k: new ort.Tensor('int32', Int32Array.from(lens.map((l) => l + S - 1)), [2]),
      total_len: new ort.Tensor('int32', Int32Array.from([W + S]), []),
    });
    const T = batch.present_k.dims[2];
    expect(batch.present_k.dims).toEqual([2, KV, W + S, D]);

    for (let b = 0; b < 2; b++) {
      const L = lens[b];
      const alone = await sess.run({
        q: new ort.Tensor('float32', q.slice(b * N * D, (b + 1) * N * D), [1, S, N * D]),
        k: new ort.Tensor('float32', k.slice(b * KV * D, (b + 1) * KV * D), [1, S, KV * D]),
        v: new ort.Tensor('float32', v.slice(b * KV * D, (b + 1) * KV * D), [1, S, KV * D]),
        pk: new ort.Tensor('float32', pastOf(blocks[b], W, L), [1, KV, L, D]),
        pv: new ort.Tensor('float32', pastOf(vblocks[b], W, L), [1, KV, L, D]),
        seqlens_k: new ort.Tensor('int32', Int32Array.from([L + S - 1]), [1]),
        total_len: new ort.Tensor('int32', Int32Array.from([L + S]), []),
      });
      // Attention output of the row equals the row alone.
      const got = (batch.out.data as Float32Array).subarray(b * N * D, (b + 1) * N * D);
      const want = alone.out.data as Float32Array;
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5);
      // Present: positions [0, L + S) of the row equal the row alone (new token at L).
      const pkB = batch.present_k.data as Float32Array;
      const pkA = alone.present_k.data as Float32Array;
      for (let h = 0; h < KV; h++) {
        for (let t = 0; t < L + S; t++) {
          for (let d = 0; d < D; d++) {
            expect(pkB[((b * KV + h) * T + t) * D + d]).toBeCloseTo(pkA[(h * (L + S) + t) * D + d], 5);
          }
        }
      }
    }
    await sess.release();
  });
});
