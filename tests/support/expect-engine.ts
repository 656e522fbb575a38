/** Assertions the engine tests share: logits against a reference, and the comm ledger against the closed form. */
import { expect } from 'vitest';
import { Engine } from '../../main/engine/host/engine';

/** Start an engine (one thread per rank), run `f` on it, close it whatever happens. */
export async function withEngine<T>(model: string, parallel: string, f: (e: Engine) => Promise<T>): Promise<T> {
  const e = await Engine.start({ model, parallel, threadsPerRank: 1 });
  try {
    return await f(e);
  } finally {
    await e.close();
  }
}

/** Largest |a − b| over every step's logits (the steps must line up). */
export function maxLogitDiff(a: Float32Array[], b: Float32Array[]): number {
  expect(a).toHaveLength(b.length);
  let m = 0;
  a.forEach((x, i) => x.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}

/**
 * Every rank's measured collectives equal the closed form op by op (count,
 * bytes sent, bytes received), and every rank expects some traffic: nothing
 * measured lacks a closed form, nothing closed-form goes unmeasured.
 */
export function expectLedgersMatchClosedForm(e: Engine, measured: Awaited<ReturnType<Engine['ledgers']>>): void {
  for (let rank = 0; rank < e.spec.world; rank++) {
    const want = e.meter.expected[rank];
    const ops = Object.keys(want) as (keyof typeof want)[];
    expect(ops.length, `rank ${rank} expects traffic`).toBeGreaterThan(0);
    for (const op of new Set([...ops, ...(Object.keys(measured[rank] ?? {}) as (keyof typeof want)[])])) {
      expect(measured[rank]?.[op]?.count, `rank ${rank} ${op} count`).toBe(want[op]?.count);
      expect(measured[rank]?.[op]?.bytesSent, `rank ${rank} ${op} bytes sent`).toBe(want[op]?.bytesSent);
      expect(measured[rank]?.[op]?.bytesRecv, `rank ${rank} ${op} bytes received`).toBe(want[op]?.bytesRecv);
    }
  }
}
