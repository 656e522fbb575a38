/**
 * OLMoE-style models (q/k RMSNorm over the whole projection, no top-k
 * renormalisation) across real ranks: every plan that keeps a layer's heads
 * together reproduces single; tensor parallelism is refused with the reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { verify } from '../../main/engine/verify';
import { Engine } from '../../main/engine/engine';
import { writeSyntheticModel } from '../../main/engine/model/synth';
import { presetConfig } from '../../main/engine/model/presets';

let cache: string;
let olmoe: string;
beforeAll(async () => {
  cache = mkdtempSync(path.join(os.tmpdir(), 'paralab-olmoe-'));
  process.env.PARALAB_CACHE = cache;
  olmoe = path.join(cache, 'olmoe');
  mkdirSync(olmoe);
  const base = presetConfig('synth-moe-tiny');
  await writeSyntheticModel(olmoe, { ...base, family: 'olmoe', hfArchitecture: 'OlmoeForCausalLM', qkNorm: true, qkNormScope: 'projection', moe: { ...base.moe!, normTopK: false } }, { seed: 21 });
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

const prompt = Array.from({ length: 29 }, (_, i) => (i * 41 + 3) % 512);

describe('OLMoE', () => {
  it('dp=2,ep=2, sp=2 and pp=2 reproduce single', async () => {
    for (const spec of ['dp=2,ep=2', 'sp=2', 'pp=2']) {
      const r = await verify({ model: olmoe, parallel: spec, promptIds: prompt, maxNewTokens: 4, threadsPerRank: 1 });
      expect(r.passed, spec).toBe(true);
    }
  });

  it('refuses tensor parallelism before starting any rank, saying why', async () => {
    await expect(Engine.start({ model: olmoe, parallel: 'tp=2', threadsPerRank: 1 })).rejects.toThrow(/q\/k RMSNorm spans the whole projection.*use tp=1/);
  });
});
