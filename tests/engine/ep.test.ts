/**
 * Expert parallelism with real rank processes on synth-moe-tiny (8 experts,
 * top-2): every plan reproduces `single` (greedy tokens identical, max
 * |Δlogit| ≤ 1e-3), the comm ledger's measured bytes equal the closed form
 * computed from the routed counts the ranks report, expert-load counts sum
 * to tokens × top-k per layer, and DP replicas that share an ep group step in
 * lockstep without deadlock when their loads are uneven (an idle replica, a
 * replica finished early by EOS).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { verify } from '../../main/engine/host/verify';
import { useTempCache, writeVariant } from '../support/model-cache';
import { expectLedgersMatchClosedForm, withEngine } from '../support/expect-engine';

const cache = useTempCache('ep');
let qwenMoe: string;
beforeAll(async () => {
  // Qwen2-MoE: shared expert with a sigmoid gate, no renormalisation of the top-k weights, QKV bias
  qwenMoe = await writeVariant(cache.dir, 'qwen2-moe', 'synth-moe-tiny', (base) => ({ ...base, family: 'qwen2_moe', hfArchitecture: 'Qwen2MoeForCausalLM', qkvBias: true, moe: { ...base.moe!, normTopK: false, sharedExpertFfn: 80 } }), { seed: 13 });
});

const MODEL = 'synth-moe-tiny';
const prompt37 = Array.from({ length: 37 }, (_, i) => (i * 37 + 11) % 512);

describe('verify: EP plans reproduce single on synth-moe-tiny', () => {
  for (const spec of ['dp=2,ep=2', 'tp=2,ep=2', 'dp=4,ep=4', 'pp=2,dp=2,ep=2', 'dp=2,tp=2,ep=4', 'tp=2']) {
    it(`${spec}, 37-token prompt`, async () => {
      const r = await verify({ model: MODEL, parallel: spec, promptIds: prompt37, maxNewTokens: 6, threadsPerRank: 1 });
      expect(r.tokens_equal).toBe(true);
      expect(r.max_abs_logit_diff).toBeLessThanOrEqual(1e-3);
      expect(r.passed).toBe(true);
      expect(r.tokens).toHaveLength(6);
    });
  }

  it('Qwen2-MoE (shared expert, no renormalisation): tp=2 (sliced experts), dp=2,ep=2, tp=2,ep=2', async () => {
    for (const spec of ['tp=2', 'dp=2,ep=2', 'tp=2,ep=2']) {
      const r = await verify({ model: qwenMoe, parallel: spec, promptIds: prompt37.slice(0, 11), maxNewTokens: 4, threadsPerRank: 1 });
      expect(r.passed, spec).toBe(true);
    }
  });

  it('dp=2,ep=2 and tp=2,ep=2, 300-token prompt', async () => {
    const long = Array.from({ length: 300 }, (_, i) => (i * 131 + 7) % 512);
    for (const spec of ['dp=2,ep=2', 'tp=2,ep=2']) {
      const r = await verify({ model: MODEL, parallel: spec, promptIds: long, maxNewTokens: 3, threadsPerRank: 1 });
      expect(r.passed, spec).toBe(true);
    }
  });
});

const prompts = [
  [5, 6, 7, 8, 9],
  [100, 90, 80, 70, 60],
  [33, 44, 55, 66, 77],
];

describe('comm ledger and expert load', () => {
  for (const spec of ['dp=2,ep=2', 'tp=2,ep=2', 'pp=2,dp=2,ep=2', 'dp=2,tp=2,ep=4']) {
    it(`${spec}: measured bytes equal the closed form from routed counts; load sums to tokens × top-k`, async () => {
      await withEngine(MODEL, spec, async (e) => {
        e.meter.reset();
        await e.ledgers(true);
        const maxNew = 4;
        await e.generate(prompts, { maxNewTokens: maxNew, ignoreEos: true });
        const measured = await e.ledgers();
        for (let rank = 0; rank < e.spec.world; rank++) expect(e.meter.expected[rank].all_to_all?.count, `rank ${rank} dispatches`).toBeGreaterThan(0);
        expectLedgersMatchClosedForm(e, measured);
        const load = e.meter.expertLoad()!;
        const tokens = prompts.length * (prompts[0].length + maxNew - 1);
        for (let l = 0; l < e.config.layers; l++) {
          expect(load.tokens[l].reduce((a, b) => a + b, 0)).toBe(tokens * e.config.moe!.topK);
          expect(load.balancedness[l]).toBeGreaterThanOrEqual(1);
        }
        // only routed rows move: besides the per-call expert counts (4·(E − E_me) bytes),
        // dispatch + combine carry at most every routed row twice, H floats each
        const E = e.config.moe!.experts;
        const routedRows = load.tokens.flat().reduce((a, b) => a + b, 0);
        const a2aSent = measured.reduce((s, m) => s + (m?.all_to_all?.bytesSent ?? 0), 0);
        const countBytes = measured.reduce((s, m) => s + ((m?.all_to_all?.count ?? 0) / 2) * 4 * (E - E / e.spec.ep), 0);
        expect(a2aSent - countBytes).toBeGreaterThan(0);
        expect(a2aSent - countBytes).toBeLessThanOrEqual(2 * routedRows * e.config.hidden * 4);
      });
    });
  }
});

describe('tp=2,ep=2 all-reduce alternative (spec key ep_tp=allreduce)', () => {
  it('reproduces single; only the MLP all-reduce moves, as the closed form says', async () => {
    const r = await verify({ model: MODEL, parallel: 'tp=2,ep=2,ep_tp=allreduce', promptIds: prompt37, maxNewTokens: 4, threadsPerRank: 1 });
    expect(r.passed).toBe(true);
    await withEngine(MODEL, 'tp=2,ep=2,ep_tp=allreduce', async (e) => {
      expect(e.roles[0].plan.ep?.tpTokens).toBe('allreduce');
      e.meter.reset();
      await e.ledgers(true);
      await e.generate(prompts, { maxNewTokens: 3, ignoreEos: true });
      const measured = await e.ledgers();
      for (let rank = 0; rank < 2; rank++) {
        expect(measured[rank]?.all_to_all).toBeUndefined();
        for (const op of ['all_reduce', 'all_gather'] as const) {
          expect(measured[rank]?.[op]?.count).toBe(e.meter.expected[rank][op]!.count);
          expect(measured[rank]?.[op]?.bytesSent).toBe(e.meter.expected[rank][op]!.bytesSent);
        }
      }
      const load = e.meter.expertLoad()!;
      expect(load.tokens[0].reduce((a, b) => a + b, 0)).toBe(prompts.length * (prompts[0].length + 2) * 2);
    });
  });
});
