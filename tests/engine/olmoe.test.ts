/**
 * OLMoE-style models (q/k RMSNorm over the whole projection, no top-k
 * renormalisation) across real ranks: every plan that keeps a layer's heads
 * together reproduces single; tensor parallelism is refused with the reason.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { verify } from '../../main/engine/host/verify';
import { Engine } from '../../main/engine/host/engine';
import { useTempCache, writeVariant } from '../support/model-cache';

const cache = useTempCache('olmoe');
let olmoe: string;
beforeAll(async () => {
  olmoe = await writeVariant(cache.dir, 'olmoe', 'synth-moe-tiny', (base) => ({ ...base, family: 'olmoe', hfArchitecture: 'OlmoeForCausalLM', qkNorm: true, qkNormScope: 'projection', moe: { ...base.moe!, normTopK: false } }), { seed: 21 });
});

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
