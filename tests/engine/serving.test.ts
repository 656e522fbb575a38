/**
 * Continuous batching is correct: each request's greedy tokens, served while
 * other requests join and leave the running batch, equal that request's
 * tokens generated alone — under `single`, tp=2, pp=2, dp=2 and pp=2,tp=2, with the
 * standard-op attention kernel (synth-llama-tiny, left-padded ragged cache)
 * and with GroupQueryAttention (a head_dim-16 model, right-padded).
 * Arrivals are staggered and prompt lengths differ, so rows of different
 * lengths really share decode steps; the test checks that they did.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../main/engine/host/engine';
import { serve } from '../../main/engine/host/serving';
import type { ServeRequest, ServeResult } from '../../main/engine/host/serving';
import { useTempCache, writeVariant } from '../support/model-cache';
import { expectLedgersMatchClosedForm } from '../support/expect-engine';

const cache = useTempCache('serving');
let gqaModel: string;
beforeAll(async () => {
  gqaModel = await writeVariant(cache.dir, 'llama-gqa16', 'synth-llama-tiny', (base) => ({ ...base, heads: 4, kvHeads: 2, headDim: 16 }), { seed: 5 });
});

// Different prompt lengths (the first two share one, so one prefill step takes
// both — under pp=2 split into two micro-batches that join together),
// arrivals staggered so later requests join a batch that is already decoding.
const REQS: ServeRequest[] = [
  { id: 0, arrivalMs: 0, prompt: [5, 6, 7, 8, 9], maxNewTokens: 80 },
  { id: 1, arrivalMs: 0, prompt: [100, 90, 80, 70, 60], maxNewTokens: 6 },
  { id: 2, arrivalMs: 15, prompt: [33, 44, 55, 66, 77, 88, 99], maxNewTokens: 12 },
  { id: 3, arrivalMs: 30, prompt: [400, 3, 9, 12, 13, 14, 15], maxNewTokens: 9 },
  { id: 4, arrivalMs: 45, prompt: [7, 7], maxNewTokens: 16 },
  { id: 5, arrivalMs: 60, prompt: [250, 251, 252, 253, 254, 255, 256, 257, 258], maxNewTokens: 5 },
];

async function alone(model: string): Promise<number[][]> {
  const e = await Engine.start({ model, parallel: 'single', threadsPerRank: 1 });
  try {
    const out: number[][] = [];
    for (const r of REQS) out.push((await e.generate([r.prompt], { maxNewTokens: r.maxNewTokens, ignoreEos: true })).outputs[0].tokens);
    return out;
  } finally {
    await e.close();
  }
}

async function served(model: string, parallel: string): Promise<ServeResult> {
  const e = await Engine.start({ model, parallel, threadsPerRank: 1 });
  try {
    return await serve(e, REQS, { ignoreEos: true, maxBatch: 8 });
  } finally {
    await e.close();
  }
}

/** Some request joined a running batch while another of that batch, already started, was still generating. */
function joinedMidFlight(res: ServeResult): boolean {
  return res.steps.some(
    (s) => s.kind === 'prefill' && res.requests.some((r) => r.replica === s.replica && r.lane === s.lane && r.tokenMs[0] < s.startMs && r.tokenMs[r.tokenMs.length - 1] > s.endMs),
  );
}

describe('continuous batching reproduces each request generated alone (greedy)', () => {
  for (const [label, model] of [
    ['standard-op kernel (synth-llama-tiny)', () => 'synth-llama-tiny'],
    ['GroupQueryAttention kernel (head_dim 16)', () => gqaModel],
  ] as const) {
    it(`${label}: single, tp=2, pp=2, dp=2, pp=2,tp=2`, async () => {
      const want = await alone(model());
      for (const spec of ['single', 'tp=2', 'pp=2', 'dp=2', 'pp=2,tp=2']) {
        const res = await served(model(), spec);
        expect(res.mode, spec).toBe('continuous');
        expect(
          res.requests.map((r) => r.tokens),
          spec,
        ).toEqual(want);
        // Timelines: one time per token, in order, none before the arrival.
        for (const r of res.requests) {
          expect(r.tokenMs).toHaveLength(r.tokens.length);
          expect(r.firstScheduledMs).toBeGreaterThanOrEqual(r.arrivalMs);
          expect(r.tokenMs[0]).toBeGreaterThanOrEqual(r.firstScheduledMs);
          for (let k = 1; k < r.tokenMs.length; k++) expect(r.tokenMs[k]).toBeGreaterThanOrEqual(r.tokenMs[k - 1]);
        }
        if (spec === 'dp=2') {
          // Each replica runs its own batch of about half the requests (too few to be sure they overlap).
          expect(new Set(res.requests.map((r) => r.replica))).toEqual(new Set([0, 1]));
        } else {
          // Rows of different lengths shared decode steps, and someone joined mid-flight.
          expect(Math.max(...res.steps.filter((s) => s.kind === 'decode').map((s) => s.batch)), spec).toBeGreaterThanOrEqual(2);
          expect(joinedMidFlight(res), spec).toBe(true);
          if (spec.startsWith('pp=2')) {
            // PP overlap: the replica runs two lanes; requests 0 and 1 arrived together and went one to each
            expect(new Set(res.requests.map((r) => r.lane)), spec).toEqual(new Set([0, 1]));
            expect(res.requests[0].lane, spec).not.toBe(res.requests[1].lane);
          } else {
            // Requests 0 and 1 arrived together with equal prompt lengths: one prefill step took both.
            expect(res.steps.some((s) => s.kind === 'prefill' && s.batch === 2), spec).toBe(true);
          }
        }
      }
    }, 180_000);
  }
});

describe('serving beside other engine features', () => {
  it('a plan whose blocks keep their own state (sp=2) falls back to one request at a time, says so, and still gives the same tokens', async () => {
    const want = await alone('synth-llama-tiny');
    const res = await served('synth-llama-tiny', 'sp=2');
    expect(res.mode).toBe('one-at-a-time');
    expect(res.notes.join(' ')).toMatch(/continuous batching is not available for 'sp=2'/);
    expect(res.requests.map((r) => r.tokens)).toEqual(want);
    for (const r of res.requests) expect(r.tokenMs).toHaveLength(r.tokens.length);
  }, 120_000);

  it('pp=2,tp=2 without overlap: the running batch decodes in micro-batches, and the measured comm ledger equals the closed form', async () => {
    const e = await Engine.start({ model: 'synth-llama-tiny', parallel: 'pp=2,tp=2', threadsPerRank: 1 });
    try {
      e.ppOverlap = false;
      e.meter.reset();
      await e.ledgers(true);
      const res = await serve(e, REQS, { ignoreEos: true });
      const measured = await e.ledgers();
      expectLedgersMatchClosedForm(e, measured);
      // stage 0 sends one message per micro-batch: two per step once two or more rows run
      const perStep = res.steps.reduce((n, s) => n + Math.min(2, s.batch), 0);
      expect(measured[0]?.send?.count).toBe(perStep);
      expect(perStep).toBeGreaterThan(res.steps.length);
    } finally {
      await e.close();
    }
  }, 60_000);

  it('with tracing on, every rank records spans of the serving steps, and rank times add up', async () => {
    const e = await Engine.start({ model: 'synth-llama-tiny', parallel: 'tp=2', threadsPerRank: 1 });
    try {
      e.meter.tracing = true;
      e.meter.reset();
      const res = await serve(e, REQS.slice(0, 3), { ignoreEos: true });
      const spans = e.meter.drainSpans();
      expect(spans).toHaveLength(2);
      for (const s of spans) {
        expect(s.some((x) => x.cat === 'compute')).toBe(true);
        expect(s.some((x) => x.cat === 'comm' && x.name.startsWith('all_reduce'))).toBe(true);
      }
      expect(spans[0].some((x) => x.name.includes('KV repack'))).toBe(true);
      expect(e.meter.rankTimes[0].steps).toBe(res.steps.length);
      expect(e.meter.kvBytes()[0]).toBeGreaterThan(0);
    } finally {
      await e.close();
    }
  }, 60_000);
});
