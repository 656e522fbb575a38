/**
 * Every collective, on real rank processes over shared memory, TCP and Unix
 * sockets, on 2 and 4 ranks, against a naive reference computed here: sizes
 * 1, 7, 1023, 4096+3 and one larger than a shared-memory slot (so it goes
 * through in several windows, and send/recv through many mailbox chunks);
 * uneven and zero counts; int32 payloads bit-exact; send/recv of varied sizes
 * both ways with out-of-order tags. Also: the ledger's bytes equal the closed
 * forms (and, on sockets, the payload bytes really written), shm files are
 * gone after the ranks joined and after destroyWorld, and a rank that dies or
 * hangs mid-collective gives its peers a CommError, not a hang.
 */
import { describe, expect, it } from 'vitest';
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { closedForm, offsets } from '../../../main/engine/comm/communicator';
import { shmAddon } from '../../../main/engine/comm/shm-native';
import { destroyWorld, prepareWorld } from '../../../main/engine/comm/world';
import type { WorldSetup } from '../../../main/engine/comm/world';
import { a2aCounts, gatherCounts, input, intPayload, p2pLength } from './cases';
import type { RankJob, RankReply } from './cases';

const ENTRY = path.join(__dirname, 'comm-rank.ts');
const SLOT = 64 * 1024;
const BIG = 40_009; // floats: > one 64 KiB slot (16384 floats) on every path
const SIZES = [1, 7, 1023, 4099, BIG];

/** Fork the ranks; `replies[r]` settles when rank r reports or exits; `kill` stops the rest (the host's part). */
function startRanks(setup: WorldSetup, sizes: number[], fault: Pick<RankJob, 'die' | 'hang'> = {}): { replies: Promise<RankReply>[]; kill: () => void } {
  const children = Array.from({ length: setup.world }, () => fork(ENTRY, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  const replies = children.map((child, rank) => {
    child.send({ setup, rank, sizes, ...fault } satisfies RankJob);
    return new Promise<RankReply>((resolve) => {
      child.once('message', (m: RankReply) => resolve(m));
      // 'close', not 'exit': 'exit' can come before the rank's last message has been read off the IPC pipe
      child.once('close', (code, sig) => resolve({ error: `exited (${sig ?? code})` }));
    });
  });
  return { replies, kill: () => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')) };
}

async function runRanks(setup: WorldSetup, sizes: number[], fault: Pick<RankJob, 'die' | 'hang'> = {}): Promise<RankReply[]> {
  const { replies, kill } = startRanks(setup, sizes, fault);
  try {
    return await Promise.all(replies);
  } finally {
    kill();
  }
}

const world = (transport: 'shm' | 'tcp' | 'unix', n: number, extra: { timeoutMs?: number } = {}) =>
  prepareWorld({ world: n, transport, groups: [{ name: 'all', ranks: Array.from({ length: n }, (_, r) => r) }], slotBytes: SLOT, chunkBytes: 16 * 1024, chunks: 2, timeoutMs: 20_000, ...extra });

const sum = (arrs: Float32Array[]) => arrs.reduce((acc, a) => acc.map((x, i) => x + a[i]), new Float32Array(arrs[0].length));
const concat = (arrs: ArrayLike<number>[]) => Float32Array.from(arrs.flatMap((a) => Array.from(a)));
const ranks = (n: number) => Array.from({ length: n }, (_, r) => r);

/** What rank `me` of `n` must get for one size. */
function reference(n: number, me: number, len: number): Record<string, Float32Array> {
  const counts = gatherCounts(n, len);
  const co = offsets(counts);
  const total = co[n];
  const sc = (r: number) => a2aCounts(n, len, r);
  const fromEach = ranks(n).map((r) => {
    const so = offsets(sc(r));
    return input(r, so[n], 4).subarray(so[me], so[me + 1]);
  });
  const ref: Record<string, Float32Array> = {
    [`allReduce:${len}`]: sum(ranks(n).map((r) => input(r, len, 0))),
    [`reduceScatter:${len}`]: sum(ranks(n).map((r) => input(r, total, 1))).subarray(co[me], co[me + 1]),
    [`allGather:${len}`]: concat(ranks(n).map((r) => input(r, counts[r], 2))),
    [`allGatherLearned:${len}`]: concat(ranks(n).map((r) => input(r, counts[r], 3))),
    [`allToAll:${len}`]: concat(fromEach),
    [`allToAllKnown:${len}`]: concat(fromEach),
    [`broadcast:${len}`]: input(99, len, 5),
  };
  for (const p of ranks(n).filter((r) => r !== me)) {
    ref[`recv1:${len}:${p}`] = input(p, p2pLength(len, p, me), 10 + me);
    ref[`recv2:${len}:${p}`] = input(p, 3 + p, 20 + me);
  }
  return ref;
}

function expectSame(key: string, got: Float32Array | Int32Array | undefined, want: Float32Array | Int32Array): void {
  expect(got, key).toBeDefined();
  expect(got!.length, `${key}: length`).toBe(want.length);
  const a = Buffer.from(got!.buffer, got!.byteOffset, got!.byteLength);
  const b = Buffer.from(want.buffer, want.byteOffset, want.byteLength);
  if (!a.equals(b)) {
    const i = want.findIndex((w, j) => !Object.is(w, got![j]));
    expect.fail(`${key}: element ${i} is ${got![i]}, expected ${want[i]}`);
  }
}

const transports = (['shm', 'tcp', 'unix'] as const).filter((t) => t !== 'shm' || shmAddon());

describe.each(transports)('collectives over %s', (transport) => {
  it.each([2, 4])('%i ranks: every collective equals the naive reference; the ledger equals the closed forms', async (n) => {
    const setup = await world(transport, n);
    let results: RankReply[];
    try {
      results = await runRanks(setup, SIZES);
      for (const f of setup.shm?.files ?? []) expect(existsSync(f), `${f} unlinked once every rank mapped it`).toBe(false);
    } finally {
      destroyWorld(setup);
    }
    const replies = results.map((r, me) => {
      if ('error' in r) throw new Error(`rank ${me}: ${r.error}`);
      return r;
    });
    for (const [me, r] of replies.entries()) {
      expectSame('ints', r.out.ints, Int32Array.from(ranks(n).flatMap((q) => Array.from(intPayload(q)))));
      for (const len of SIZES) for (const [key, want] of Object.entries(reference(n, me, len))) expectSame(`rank ${me} ${key}`, r.out[key], want);
      const ar = r.ledger.all_reduce!;
      expect(ar.count).toBe(SIZES.length);
      expect(ar.bytesSent).toBe(SIZES.reduce((s, len) => s + closedForm.allReduce(n, me, len).sent, 0));
      expect(ar.bytesRecv).toBe(ar.bytesSent);
      if (n === 2) expect(ar.bytesSent).toBe(SIZES.reduce((s, len) => s + 4 * len, 0)); // 2(n−1)/n·L = L
      expect(r.ledger.recv!.bytesRecv).toBe(SIZES.reduce((s, len) => s + ranks(n).filter((p) => p !== me).reduce((t, p) => t + 4 * (p2pLength(len, p, me) + 3 + p), 0), 0));
      if (r.wire) {
        const ops = Object.values(r.ledger);
        expect(r.wire.sent, 'payload bytes written = ledger bytes sent').toBe(ops.reduce((s, e) => s + e.bytesSent, 0));
        expect(r.wire.recv, 'payload bytes read = ledger bytes received').toBe(ops.reduce((s, e) => s + e.bytesRecv, 0));
      }
    }
    // Every rank ends an all-reduce with the same bits.
    for (const r of replies) expectSame('allReduce bits', r.out[`allReduce:${BIG}`], replies[0].out[`allReduce:${BIG}`]);
  });

  it('a rank killed mid-run gives its peers a CommError well before the timeout, not a hang', async () => {
    const setup = await world(transport, 3, { timeoutMs: 15_000 });
    const t0 = Date.now();
    try {
      const [r0, r1, r2] = await runRanks(setup, [7, 1023, 7], { die: { rank: 1, at: 1 } });
      expect('error' in r1 && r1.error).toMatch(/SIGKILL/);
      for (const r of [r0, r2]) expect('error' in r && r.error).toMatch(/CommError: .*(rank 1|closed|exited)/);
    } finally {
      destroyWorld(setup);
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('timeouts', () => {
  it.each(transports)('%s: a peer that never arrives fails the op after timeoutMs, naming the op, group and rank', async (transport) => {
    const setup = await world(transport, 2, { timeoutMs: 1_000 });
    const t0 = Date.now();
    try {
      const { replies, kill } = startRanks(setup, [5], { hang: 1 });
      const r0 = await Promise.race([replies[0], new Promise<RankReply>((resolve) => setTimeout(() => resolve({ error: 'still waiting after 8 s' }), 8_000))]);
      kill();
      expect('error' in r0 && r0.error).toBe(`CommError: all_reduce in group 'all': rank 1 did not arrive within 1 s (a peer died or is stuck; if this wait is expected, raise --timeout)`);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
    } finally {
      destroyWorld(setup);
    }
    for (const f of setup.shm?.files ?? []) expect(existsSync(f)).toBe(false);
  });
});
