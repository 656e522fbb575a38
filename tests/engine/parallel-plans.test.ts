/**
 * Real multi-process parallelism: every plan computes the same function as
 * `single` (DESIGN.md correctness contract): greedy tokens identical and max
 * |Δlogit| ≤ 1e-3 in fp32, with real rank processes and real collectives.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { verify } from '../../main/engine/host/verify';
import { Engine } from '../../main/engine/host/engine';
import { qwen2Gqa16, useTempCache, writeVariant } from '../support/model-cache';
import { expectLedgersMatchClosedForm } from '../support/expect-engine';

const cache = useTempCache('plans');
let gqaModel: string;
beforeAll(async () => {
  // A Qwen2-style model with head_dim 16 exercises the fused GroupQueryAttention kernel and QKV bias under TP.
  gqaModel = await writeVariant(cache.dir, 'qwen2-gqa', 'synth-llama-tiny', qwen2Gqa16, { seed: 11 });
});

const prompt = [1, 2, 3, 200, 17, 45, 311, 8, 90, 121, 7];

describe('verify: every plan reproduces single on synth-llama-tiny', () => {
  for (const spec of ['dp=2', 'pp=2', 'tp=2', 'tp=4', 'pp=2,tp=2', 'dp=2,tp=2', 'dp=2,pp=2', 'pp=4,micro=2', 'tp=8']) {
    it(spec, async () => {
      const r = await verify({ model: 'synth-llama-tiny', parallel: spec, promptIds: prompt, maxNewTokens: 8, threadsPerRank: 1 });
      expect(r.tokens_equal).toBe(true);
      expect(r.max_abs_logit_diff).toBeLessThanOrEqual(1e-3);
      expect(r.passed).toBe(true);
      expect(r.tokens).toHaveLength(8);
    });
  }

  it('tp=2 and pp=2,tp=2 on a GQA-kernel model with QKV bias', async () => {
    for (const spec of ['tp=2', 'pp=2,tp=2']) {
      const r = await verify({ model: gqaModel, parallel: spec, promptIds: prompt, maxNewTokens: 6, threadsPerRank: 1 });
      expect(r.passed, spec).toBe(true);
    }
  });
});

describe('batches across replicas and micro-batches', () => {
  it('dp=2 and pp=2,micro=4 give every sequence of a batch the single-worker tokens', async () => {
    const prompts = [
      [5, 6, 7, 8],
      [100, 90, 80, 70],
      [33, 44, 55, 66],
      [400, 3, 9, 12],
      [7, 7, 7, 7],
    ];
    const run = async (parallel: string) => {
      const e = await Engine.start({ model: 'synth-llama-tiny', parallel, threadsPerRank: 1 });
      try {
        return (await e.generate(prompts, { maxNewTokens: 5, ignoreEos: true })).outputs.map((o) => o.tokens);
      } finally {
        await e.close();
      }
    };
    const want = await run('single');
    expect(await run('dp=2')).toEqual(want);
    expect(await run('pp=2,micro=4')).toEqual(want);
    expect(await run('dp=2,pp=2,tp=2')).toEqual(want);
  });
});

describe('comm ledger', () => {
  it('measured bytes per op equal the closed form (pp=2,tp=2 with micro-batches)', async () => {
    const e = await Engine.start({ model: 'synth-llama-tiny', parallel: 'pp=2,tp=2,micro=2', threadsPerRank: 1 });
    try {
      e.meter.reset();
      await e.ledgers(true);
      await e.generate([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]], { maxNewTokens: 4, ignoreEos: true });
      const measured = await e.ledgers();
      expectLedgersMatchClosedForm(e, measured);
      // stage 0 sends, stage 1 receives; both stages all-reduce
      expect(e.meter.expected[0].send?.count).toBe(4 * 2);
      expect(e.meter.expected[2].recv?.count).toBe(4 * 2);
      expect(e.meter.expected[2].all_gather?.count).toBe(4 * 2);
    } finally {
      await e.close();
    }
  });
});

describe('failures', () => {
  it('a TP rank killed mid-generation fails the run naming it; no rank is left; the next run works', async () => {
    const e = await Engine.start({ model: 'synth-llama-tiny', parallel: 'tp=2', threadsPerRank: 1 });
    const pids = e.cluster.pids();
    const t0 = Date.now();
    const run = e.generate([[1, 2, 3]], {
      maxNewTokens: 4000, // within the 4096 context; the rank dies long before the end
      ignoreEos: true,
      onToken: () => {
        if (Date.now() - t0 > 100) process.kill(pids[1], 'SIGKILL');
      },
    });
    await expect(run).rejects.toThrow(/rank 1 \(pid \d+\) was killed by SIGKILL/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await e.close();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    const again = await verify({ model: 'synth-llama-tiny', parallel: 'tp=2', promptIds: [1, 2, 3], maxNewTokens: 3, threadsPerRank: 1 });
    expect(again.passed).toBe(true);
  });

  it('impossible specs say which number must divide which', async () => {
    const start = (parallel: string) => Engine.start({ model: 'synth-llama-tiny', parallel, threadsPerRank: 1 });
    await expect(start('tp=16')).rejects.toThrow(/tp=16 exceeds the 8 attention heads .*use tp ≤ 8/);
    await expect(start('pp=9')).rejects.toThrow(/pp=9 exceeds the 4 layers/);
    await expect(start('dp=64,tp=2')).rejects.toThrow(/64/);
  });
});
