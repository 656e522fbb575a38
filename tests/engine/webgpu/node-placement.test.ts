/**
 * Which nodes of our segment graphs the WebGPU provider runs, read from
 * onnxruntime's verbose node-placement log (in a child process). Measured
 * with onnxruntime-node 1.30: everything — MatMul, the RMSNorm variants,
 * RotaryEmbedding, GroupQueryAttention, the standard-op attention — runs on
 * the GPU except the int64 id-masking ops of the vocab-parallel embedding
 * (GreaterOrEqual, Less, Sub, Where on token ids, which arrive from the host
 * anyway). A graph change that sends real compute to the CPU fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nodePlacements, parseNodePlacements, probeProvider } from '../../../main/engine/runtime/probe';
import { ensurePreset, writeSyntheticModel } from '../../../main/engine/model/synth';
import { presetConfig } from '../../../main/engine/model/presets';
import { loadModelConfig } from '../../../main/engine/model/config';
import { WeightStore } from '../../../main/engine/model/weights';
import { ropeCosSin } from '../../../main/engine/model/rope';
import { buildSegment, groupPieces } from '../../../main/engine/graph/segments';
import { loadShardPieces } from '../../../main/engine/rank/load-shard';

const probe = await probeProvider('webgpu', { timeoutMs: 120_000 });
const skipReason = probe.ok ? '' : ` — SKIPPED: no WebGPU adapter here (${probe.error}); install lavapipe with scripts/lavapipe.sh`;
if (!probe.ok) console.warn(`webgpu node-placement tests skipped: ${probe.error}`);

/** int64 id-masking ops of the vocab-parallel embedding: the only CPU fallback we accept. */
const CPU_OK = new Set(['GreaterOrEqual', 'Less', 'Sub', 'Where']);

let cache: string;
let tinyDir: string;
let gqaDir: string;
beforeAll(async () => {
  cache = mkdtempSync(path.join(os.tmpdir(), 'paralab-placement-'));
  tinyDir = await ensurePreset('synth-llama-tiny', { cacheDir: cache });
  gqaDir = path.join(cache, 'gqa');
  mkdirSync(gqaDir);
  await writeSyntheticModel(gqaDir, { ...presetConfig('synth-llama-tiny'), heads: 4, kvHeads: 2, headDim: 16 }, { seed: 5 });
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

/** The dense segments a rank builds for (layers, tp) with the 'collectives' cut. */
function segments(dir: string, tp: { rank: number; size: number }) {
  const config = loadModelConfig(dir);
  const store = WeightStore.open(dir);
  const pieces = loadShardPieces(config, store, { layers: [0, config.layers], embed: true, head: true, tp });
  store.close();
  const rope = { ...ropeCosSin(config, 32), maxSeq: 32 };
  return groupPieces(pieces, () => tp.size > 1).map((s) => buildSegment(s, rope));
}

describe('parseNodePlacements', () => {
  it('reads onnxruntime’s verbose placement block', () => {
    const log = [
      '2026-11-29 04:38:31.47 [V:onnxruntime:, session_state.cc:1377 VerifyEachNodeIsAssignedToAnEp] Node placements',
      '2026-11-29 04:38:31.47 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 2',
      '2026-11-29 04:38:31.47 [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Gather (n_Gather_14)',
      '2026-11-29 04:38:31.47 [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   MemcpyFromHost (Memcpy)',
      '2026-11-29 04:38:31.47 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1',
      '2026-11-29 04:38:31.47 [V:onnxruntime:, session_state.cc:1385 VerifyEachNodeIsAssignedToAnEp]   Where (n_Where_12)',
      'unrelated line',
      '2026-11-29 04:38:26.86 [V:onnxruntime:, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]  All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 135',
    ].join('\n');
    expect(parseNodePlacements(log)).toEqual([
      { provider: 'WebGpuExecutionProvider', count: 2, nodes: [{ op: 'Gather', name: 'n_Gather_14' }, { op: 'MemcpyFromHost', name: 'Memcpy' }] },
      { provider: 'CPUExecutionProvider', count: 1, nodes: [{ op: 'Where', name: 'n_Where_12' }] },
      { provider: 'WebGpuExecutionProvider', count: 135, nodes: [] },
    ]);
  });
});

describe.skipIf(!probe.ok)(`WebGPU runs the compute of our graphs${skipReason}`, () => {
  const cases: [string, () => string, { rank: number; size: number }][] = [
    ['tiny, one rank (standard-op attention)', () => tinyDir, { rank: 0, size: 1 }],
    ['tiny, tp=2 rank 1 (vocab-parallel embedding)', () => tinyDir, { rank: 1, size: 2 }],
    ['head_dim 16, one rank (GroupQueryAttention)', () => gqaDir, { rank: 0, size: 1 }],
  ];
  for (const [name, dir, tp] of cases) {
    it(
      name,
      async () => {
        const onCpu: string[] = [];
        let onGpu = 0;
        const segs = segments(dir(), tp);
        expect(segs.some((s) => s.kernel === (dir() === gqaDir ? 'gqa' : 'ops'))).toBe(true);
        for (const seg of segs) {
          const placed = await nodePlacements(seg.bytes, 'webgpu');
          expect(placed.length).toBeGreaterThan(0);
          for (const p of placed) {
            if (p.provider === 'CPUExecutionProvider') onCpu.push(...p.nodes.map((n) => n.op));
            else if (p.provider === 'WebGpuExecutionProvider') onGpu += p.count;
          }
        }
        console.log(`${name}: ${onGpu} nodes on WebGPU, on the CPU: ${onCpu.join(', ') || 'none'}`);
        expect(onGpu).toBeGreaterThan(0);
        expect(onCpu.filter((op) => !CPU_OK.has(op))).toEqual([]);
        if (tp.size === 1) expect(onCpu).toEqual([]);
      },
      300_000,
    );
  }
});
