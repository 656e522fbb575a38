/**
 * PP that overlaps across steps (Engine.ppOverlap, the default): a replica's
 * sequences run as `micro` batches of their own, each stepped by its own
 * loop, so the first stage runs batch A's next token while the last stage
 * finishes batch B's. Checked on real rank processes: the tokens equal
 * `single` (greedy and sampled), the ledger equals the closed form, the
 * lanes' steps really run at the same time, and the last stage waits less
 * for the first (its bubble) than with overlap off on the same work.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../main/engine/host/engine';
import { serve } from '../../main/engine/host/serving';
import type { ServeRequest } from '../../main/engine/host/serving';
import { expectLedgersMatchClosedForm, withEngine } from '../support/expect-engine';
import { useTempCache, writeVariant } from '../support/model-cache';

// Wide enough (hidden 512, 4 layers, ~50 MB) that a stage's compute, not the host's
// message round trip, decides a decode step: what overlap can hide.
const cache = useTempCache('pp-overlap');
let MODEL = '';
beforeAll(async () => {
  MODEL = await writeVariant(cache.dir, 'llama-512', 'synth-llama-tiny', (b) => ({ ...b, hidden: 512, heads: 8, kvHeads: 4, headDim: 64, ffn: 1408 }), { seed: 9 });
});
const PROMPTS = [
  [5, 6, 7, 8],
  [100, 90, 80, 70],
  [33, 44, 55, 66],
  [400, 3, 9, 12],
];
const NEW = 12;

/** Tokens of a batch (greedy or sampled with a fixed seed). */
async function run(e: Engine, sampled: boolean): Promise<number[][]> {
  const sampling = sampled ? { greedy: false, temperature: 0.9, topP: 0.9 } : { greedy: true };
  const { outputs } = await e.generate(PROMPTS, { maxNewTokens: NEW, ignoreEos: true, sampling, seed: 11 });
  return outputs.map((o) => o.tokens);
}

/** The last pipeline stage's time blocked on the previous one (its bubble), ms. */
function lastStageBubble(e: Engine): number {
  const last = e.roles.filter((r) => r.replica === 0).at(-1)!.rank;
  return e.meter.rankTimes[last].bubbleMs;
}

describe('PP overlap across steps', () => {
  it('generate under pp=2 and pp=2,tp=2: two batches in flight, the tokens of single (greedy and sampled), the closed-form ledger; the same with overlap off', async () => {
    const want = await withEngine(MODEL, 'single', async (e) => [await run(e, false), await run(e, true)]);
    for (const spec of ['pp=2', 'pp=2,tp=2']) {
      await withEngine(MODEL, spec, async (e) => {
        expect(e.ppOverlap).toBe(true);
        expect(e.inFlight(PROMPTS.length)).toBe(2);
        expect(e.inFlight(1)).toBe(1);
        e.meter.reset();
        await e.ledgers(true);
        const greedy = await run(e, false);
        expectLedgersMatchClosedForm(e, await e.ledgers());
        // one pipeline message per batch and step: two batches, NEW steps each
        expect((await e.ledgers())[0]?.send?.count, spec).toBe(2 * NEW);
        expect([greedy, await run(e, true)], spec).toEqual(want);
        e.ppOverlap = false;
        expect(e.inFlight(PROMPTS.length)).toBe(1);
        expect(await run(e, false), spec).toEqual(want[0]);
      });
    }
  }, 180_000);

  it('serving under pp=2: two lanes whose steps run at the same time, the tokens of each request alone, the closed-form ledger, and a smaller bubble than with overlap off', async () => {
    const reqs: ServeRequest[] = [...PROMPTS, ...PROMPTS.map((p) => p.map((t) => t + 1))].map((prompt, id) => ({ id, arrivalMs: id * 3, prompt, maxNewTokens: NEW + id }));
    const want = await withEngine(MODEL, 'single', async (e) => {
      const out: number[][] = [];
      for (const r of reqs) out.push((await e.generate([r.prompt], { maxNewTokens: r.maxNewTokens, ignoreEos: true })).outputs[0].tokens);
      return out;
    });
    await withEngine(MODEL, 'pp=2', async (e) => {
      const bubble: Record<string, number> = {};
      for (const overlap of [true, false, true]) {
        e.ppOverlap = overlap;
        e.meter.reset();
        await e.ledgers(true);
        const res = await serve(e, reqs, { ignoreEos: true, maxBatch: 4 });
        expectLedgersMatchClosedForm(e, await e.ledgers());
        expect(res.requests.map((r) => r.tokens)).toEqual(want);
        const key = overlap ? 'on' : 'off';
        bubble[key] = Math.min(bubble[key] ?? Infinity, lastStageBubble(e));
        if (!overlap) continue;
        expect(new Set(res.requests.map((r) => r.lane))).toEqual(new Set([0, 1]));
        // some decode step of lane 0 and one of lane 1 were in flight at once
        const decode = (lane: number) => res.steps.filter((s) => s.kind === 'decode' && s.lane === lane);
        expect(decode(0).some((a) => decode(1).some((b) => a.startMs < b.endMs && b.startMs < a.endMs))).toBe(true);
        // each lane holds at most its half of maxBatch
        for (const s of res.steps) expect(s.batch).toBeLessThanOrEqual(2);
      }
      // Without overlap the last stage waits for the first in every step; with it the first stage
      // has usually run the next step already (docs/PERFORMANCE.md: 3.0 → 1.6 s on synth-llama-small).
      expect(bubble.on, `last-stage bubble ${bubble.on.toFixed(0)} ms with overlap, ${bubble.off.toFixed(0)} ms without`).toBeLessThan(bubble.off);
    });
  }, 120_000);
});
