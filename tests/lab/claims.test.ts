/** The claims check decides each verdict from the numbers of hand-made runs. */
import { describe, expect, it } from 'vitest';
import { ASPECTS, STRATEGIES, checkClaims } from '../../main/lab/claims';
import type { ClaimRow } from '../../main/lab/contract';
import { makeRecord } from './runFixtures';

const row = (rows: ClaimRow[], s: ClaimRow['strategy'], a: ClaimRow['aspect']) => rows.find((r) => r.strategy === s && r.aspect === a)!;

describe('claims table', () => {
  it('has one row per strategy × aspect, each with both languages', () => {
    const rows = checkClaims([makeRecord()]);
    expect(rows).toHaveLength(STRATEGIES.length * ASPECTS.length);
    for (const s of STRATEGIES) for (const a of ASPECTS) expect(row(rows, s, a)).toBeDefined();
    for (const r of rows) {
      expect(r.claim.en.length).toBeGreaterThan(3);
      expect(r.claim.zh).toMatch(/[\u4e00-\u9fff]/);
      expect(r.evidence.zh.length).toBeGreaterThan(0);
    }
    // only a single run: nothing can be judged
    expect(rows.every((r) => r.verdict === 'not_measured')).toBe(true);
  });

  it('TP: faster is borne out, slower is not; SP / EP stay not measured', () => {
    const single = makeRecord({ outputTokS: 100, tpotMs: 10 });
    const fast = makeRecord({ degrees: { tp: 2 }, weights: [520, 520], outputTokS: 150, tpotMs: 6 });
    let rows = checkClaims([single, fast]);
    expect(row(rows, 'TP', 'throughput').verdict).toBe('borne_out');
    expect(row(rows, 'TP', 'latency').verdict).toBe('borne_out');
    expect(row(rows, 'TP', 'memory').verdict).toBe('borne_out');
    expect(row(rows, 'TP', 'throughput').runIds).toEqual([fast.id, single.id]);
    expect(row(rows, 'TP', 'throughput').evidence.en).toContain('×1.50');
    expect(row(rows, 'SP', 'latency').verdict).toBe('not_measured');
    expect(row(rows, 'EP', 'memory').verdict).toBe('not_measured');
    expect(row(rows, 'DP', 'throughput').verdict).toBe('not_measured');

    const slow = makeRecord({ degrees: { tp: 2 }, weights: [520, 520], outputTokS: 60, tpotMs: 16 });
    rows = checkClaims([single, slow]);
    expect(row(rows, 'TP', 'throughput').verdict).toBe('not_borne_out');
    expect(row(rows, 'TP', 'latency').verdict).toBe('not_borne_out');
  });

  it('TP communication counts collectives per layer per step per rank', () => {
    const single = makeRecord();
    // 4 steps × 4 layers × 2 all-reduces per layer on each of 2 ranks
    const tp = makeRecord({ degrees: { tp: 2 }, steps: 4, comm: [0, 1].map((rank) => ({ rank, op: 'all_reduce', count: 32, bytes: 4096 })) });
    expect(row(checkClaims([single, tp]), 'TP', 'communication').verdict).toBe('borne_out');
    const few = makeRecord({ degrees: { tp: 2 }, steps: 4, comm: [0, 1].map((rank) => ({ rank, op: 'all_reduce', count: 16, bytes: 4096 })) });
    expect(row(checkClaims([single, few]), 'TP', 'communication').verdict).toBe('not_borne_out');
  });

  it('DP: near-linear throughput, a full copy, no traffic between ranks, no better latency', () => {
    const single = makeRecord({ outputTokS: 100, tpotMs: 10 });
    const dp = makeRecord({ degrees: { dp: 2 }, weights: [1000, 1000], outputTokS: 190, tpotMs: 10.5 });
    const rows = checkClaims([single, dp]);
    expect(row(rows, 'DP', 'throughput').verdict).toBe('borne_out');
    expect(row(rows, 'DP', 'memory').verdict).toBe('borne_out');
    expect(row(rows, 'DP', 'communication').verdict).toBe('borne_out');
    expect(row(rows, 'DP', 'latency').verdict).toBe('borne_out');
    const weak = makeRecord({ degrees: { dp: 2 }, outputTokS: 110 });
    expect(row(checkClaims([single, weak]), 'DP', 'throughput').verdict).toBe('not_borne_out');
  });

  it('PP: stage weights only, hidden states by send/recv at the closed form, throughput below DP', () => {
    const single = makeRecord({ outputTokS: 100 });
    const pp = makeRecord({ degrees: { pp: 2 }, weights: [510, 530], outputTokS: 120, comm: [{ rank: 0, op: 'send', count: 4, bytes: 2048 }, { rank: 1, op: 'recv', count: 4, bytes: 0 }] });
    const dp = makeRecord({ degrees: { dp: 2 }, outputTokS: 190 });
    const rows = checkClaims([single, pp, dp]);
    expect(row(rows, 'PP', 'memory').verdict).toBe('borne_out');
    expect(row(rows, 'PP', 'communication').verdict).toBe('borne_out');
    expect(row(rows, 'PP', 'throughput').verdict).toBe('borne_out');
    expect(row(rows, 'PP', 'throughput').runIds).toContain(dp.id);
    // without a DP run of the same degree the comparison the claim makes cannot be done
    expect(row(checkClaims([single, pp]), 'PP', 'throughput').verdict).toBe('not_measured');
    // TP splits finer than PP when its largest rank holds less
    const tp = makeRecord({ degrees: { tp: 2 }, weights: [500, 500] });
    expect(row(checkClaims([single, pp, tp]), 'TP', 'memory').verdict).toBe('borne_out');
  });

  it('compares only runs on the same work', () => {
    const single = makeRecord({ workload: 'prefill' });
    const tp = makeRecord({ degrees: { tp: 2 }, workload: 'decode' });
    const r = row(checkClaims([single, tp]), 'TP', 'throughput');
    expect(r.verdict).toBe('not_measured');
    expect(r.evidence.en).toContain('no single run on the same workload');
  });
});
