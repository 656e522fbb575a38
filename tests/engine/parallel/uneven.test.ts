/**
 * Splits that do not divide (issue 13): tp over heads that do not split the
 * way the GQA kernel groups them, and ep over experts it does not divide.
 * Each runs across real ranks, reproduces single (tokens and logits), and
 * its comm ledger equals the closed form.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { holdsKvTwice, kvSlots, maxLocalHeads, shardLayout } from '../../../main/engine/parallel/tp/layout';
import { expertRange } from '../../../main/engine/parallel/ep/plan';
import { parseSpec } from '../../../main/engine/parallel/spec';
import { validateSpecForModel } from '../../../main/engine/parallel/validate';
import { presetConfig } from '../../../main/engine/model/presets';
import type { ModelConfig } from '../../../main/engine/model/types';
import { verify } from '../../../main/engine/host/verify';
import { Engine } from '../../../main/engine/host/engine';
import { useTempCache, writeVariant } from '../../support/model-cache';
import { expectLedgersMatchClosedForm } from '../../support/expect-engine';

// 6 query / 2 KV heads and 8 / 4, head_dim 16 (the fused GroupQueryAttention kernel)
const heads6kv2 = (b: ModelConfig): ModelConfig => ({ ...b, hidden: 96, heads: 6, kvHeads: 2, headDim: 16, ffn: 160 });
const heads8kv4 = (b: ModelConfig): ModelConfig => ({ ...b, hidden: 128, heads: 8, kvHeads: 4, headDim: 16, ffn: 192 });
const experts6 = (b: ModelConfig): ModelConfig => ({ ...b, moe: { ...b.moe!, experts: 6 } });

describe('the uneven layouts (pure)', () => {
  it('KV slots: each rank the KV heads its query heads read, repeated so one group size fits all its heads', () => {
    expect([[0, 2], [2, 4], [4, 6]].map((r) => kvSlots(6, 2, r as [number, number]))).toEqual([[0], [0, 1], [1]]);
    expect([[0, 3], [3, 6], [6, 8]].map((r) => kvSlots(8, 4, r as [number, number]))).toEqual([[0, 0, 1], [1, 2, 2], [3]]);
    // the even cases are unchanged: contiguous KV heads, replicated when tp exceeds them
    expect(kvSlots(8, 4, [0, 4])).toEqual([0, 1]);
    expect(kvSlots(8, 2, [2, 4])).toEqual([0]);
    expect(maxLocalHeads(8, 4, 3)).toEqual({ q: 3, kv: 3 });
    const c = { ...presetConfig('synth-llama-tiny'), heads: 6, kvHeads: 2 };
    expect(shardLayout(c, { rank: 1, size: 4 }).heads).toEqual([2, 4]);
    expect(shardLayout(c, { rank: 3, size: 4 }).heads).toEqual([5, 6]);
  });

  it('KV runs are summarised without listing them: the same answers as the slot list, and a config claiming 2^30 heads costs nothing', () => {
    for (const [H, K] of [[6, 2], [8, 4], [12, 4], [24, 8], [16, 16], [30, 5]]) {
      for (let a = 0; a < H; a++) {
        for (let b = a + 1; b <= H; b++) {
          const slots = kvSlots(H, K, [a, b]);
          expect(holdsKvTwice(H, K, [a, b]), `${H}/${K} [${a},${b})`).toBe(new Set(slots).size !== slots.length);
        }
      }
      for (const tp of [2, 3, 4, 5]) {
        if (tp > H) continue;
        const brute = Math.max(...Array.from({ length: tp }, (_, r) => shardLayout({ ...presetConfig('synth-llama-tiny'), heads: H, kvHeads: K }, { rank: r, size: tp }).kvSlots.length));
        expect(maxLocalHeads(H, K, tp).kv).toBe(brute);
      }
    }
    expect(maxLocalHeads(2 ** 30, 2 ** 30, 2)).toEqual({ q: 2 ** 29, kv: 2 ** 29 });
    expect(holdsKvTwice(2 ** 30, 2 ** 30, [0, 2 ** 29])).toBe(false);
  });

  it('experts: the first E mod ep ranks hold one more', () => {
    expect([0, 1, 2, 3].map((r) => expertRange(6, 4, r))).toEqual([[0, 2], [2, 4], [4, 5], [5, 6]]);
  });

  it('validation accepts what runs, with a note, and refuses only what cannot, naming what can', () => {
    const dense = heads6kv2(presetConfig('synth-llama-tiny'));
    expect(validateSpecForModel(parseSpec('tp=3'), dense).notes.join(' ')).toMatch(/KV heads/);
    expect(validateSpecForModel(parseSpec('tp=4'), dense).notes.join(' ')).toMatch(/splits 6 attention heads unevenly \(2\/2\/1\/1\)/);
    expect(() => validateSpecForModel(parseSpec('tp=8'), dense)).toThrow(/tp=8 exceeds the 6 attention heads .*use tp ≤ 6/);
    expect(() => validateSpecForModel(parseSpec('tp=4,sp=2'), dense)).toThrow(/unevenly .*use tp ∈ \{1,2,3,6\} with sp/);
    // tp divides the heads but cuts a KV group (12 / 3 heads over tp=2: rank 0 holds 4 + 2 heads of two groups): fine alone, not with sp
    const cuts = { ...presetConfig('synth-llama-tiny'), heads: 12, kvHeads: 3 };
    expect(validateSpecForModel(parseSpec('tp=2'), cuts).notes.join(' ')).toMatch(/KV heads/);
    expect(() => validateSpecForModel(parseSpec('tp=2,sp=2'), cuts)).toThrow(/tp=2 cuts the KV groups of 12 heads \/ 3 KV heads .*with sp/);
    const moe = experts6(presetConfig('synth-moe-tiny'));
    expect(validateSpecForModel(parseSpec('dp=4,ep=4'), moe).notes.join(' ')).toMatch(/ep=4 splits the 6 experts unevenly \(2\/2\/1\/1 per rank\)/);
    expect(() => validateSpecForModel(parseSpec('dp=8,ep=8'), moe)).toThrow(/ep=8 exceeds the 6 experts .*use ep ≤ 6/);
  });
});

const cache = useTempCache('uneven');
let m62: string;
let m84: string;
let moe6: string;
beforeAll(async () => {
  m62 = await writeVariant(cache.dir, 'heads6kv2', 'synth-llama-tiny', heads6kv2, { seed: 21 });
  m84 = await writeVariant(cache.dir, 'heads8kv4', 'synth-llama-tiny', heads8kv4, { seed: 22 });
  moe6 = await writeVariant(cache.dir, 'experts6', 'synth-moe-tiny', experts6, { seed: 23 });
});

const prompt = [1, 2, 3, 200, 17, 45, 311, 8, 90];

async function ledgerMatches(model: string, parallel: string): Promise<void> {
  const e = await Engine.start({ model, parallel, threadsPerRank: 1 });
  try {
    e.meter.reset();
    await e.ledgers(true);
    await e.generate([prompt, prompt.map((t) => t + 1)], { maxNewTokens: 3, ignoreEos: true });
    expectLedgersMatchClosedForm(e, await e.ledgers());
  } finally {
    await e.close();
  }
}

describe('uneven splits run and reproduce single', () => {
  for (const [name, model, spec] of [
    ['6 / 2 heads', () => m62, 'tp=3'],
    ['8 / 4 heads', () => m84, 'tp=3'],
    ['6 / 2 heads, 2/2/1/1 per rank', () => m62, 'tp=4'],
    ['6 experts', () => moe6, 'dp=4,ep=4'],
  ] as const) {
    it(`${spec} over ${name}: tokens and logits equal single; the ledger equals the closed form`, async () => {
      const r = await verify({ model: model(), parallel: spec, promptIds: prompt, maxNewTokens: 6, threadsPerRank: 1 });
      expect(r.tokens_equal).toBe(true);
      expect(r.max_abs_logit_diff).toBeLessThanOrEqual(1e-3);
      await ledgerMatches(model(), spec);
    });
  }
});
