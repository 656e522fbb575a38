/**
 * One rank of `lab commbench` (main/cli/commbench.ts), forked by the host with
 * `--import tsx`. It joins the world in its job, and for each op and size:
 * checks the result of the first call against values it computes itself
 * (every rank's input is a known function of rank and index, with sums exact
 * in float32), then times `iters` calls one by one and sends the durations
 * back. Output buffers are allocated once per row, as in nccl-tests. Sizes are nccl-tests' "size": the all-reduce / reduce-scatter input,
 * the all-gather output, the all-to-all send buffer, the broadcast buffer,
 * the ping-pong message (ranks 0 ↔ 1, half a round trip).
 */
import { evenCounts, offsets } from './communicator';
import type { Communicator } from './communicator';
import { pinToCpus } from './shm-native';
import { joinWorld } from './world';
import type { WorldSetup } from './world';

export const BENCH_OPS = ['all_reduce', 'reduce_scatter', 'all_gather', 'all_to_all', 'broadcast', 'sendrecv'] as const;
export type BenchOp = (typeof BENCH_OPS)[number];

export interface BenchJob {
  setup: WorldSetup;
  rank: number;
  ops: BenchOp[];
  /** bytes */
  sizes: number[];
  /** timed calls per size: fixed, or null for the default (more for small sizes) */
  iters: number | null;
  /** cpus to pin this rank to, or null */
  pin: number[] | null;
}

export interface BenchRow {
  op: BenchOp;
  bytes: number;
  /** µs per call, in call order (ping-pong: rank 0 only) */
  us: number[];
  ok: boolean;
  detail?: string;
}

export type BenchReply = { rows: BenchRow[] } | { error: string };

export function defaultIters(bytes: number): number {
  return Math.max(10, Math.min(300, Math.floor(2 ** 26 / bytes)));
}

/** Rank r's value at index i: multiples of 1/8 in [−6.25, 6.25], so sums of a few are exact. */
const value = (r: number, i: number) => (((i * 7 + r * 13) % 101) - 50) / 8;
const fill = (n: number, f: (i: number) => number) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f(i);
  return a;
};

function firstMismatch(got: Float32Array, want: (i: number) => number, len: number): string | null {
  if (got.length !== len) return `length ${got.length}, expected ${len}`;
  for (let i = 0; i < len; i++) if (got[i] !== want(i)) return `element ${i} is ${got[i]}, expected ${want(i)}`;
  return null;
}

/** One op at one size: returns the check's verdict and a function that runs one timed call. */
function prepare(g: Communicator, op: BenchOp, floats: number): { first: () => Promise<string | null>; call: () => Promise<void> } {
  const { rank: me, size: n } = g;
  const sum = (i: number) => Array.from({ length: n }, (_, r) => value(r, i)).reduce((a, b) => a + b, 0);
  const counts = evenCounts(floats, n);
  const offs = offsets(counts);
  switch (op) {
    case 'all_reduce': {
      const buf = fill(floats, (i) => value(me, i));
      const call = () => g.allReduce(buf);
      return { call, first: async () => (await call(), firstMismatch(buf, sum, floats)) };
    }
    case 'reduce_scatter': {
      const buf = fill(floats, (i) => value(me, i));
      const out = new Float32Array(counts[me]);
      const call = async () => void (await g.reduceScatter(buf, counts, out));
      return { call, first: async () => firstMismatch(await g.reduceScatter(buf, counts, out), (i) => sum(offs[me] + i), counts[me]) };
    }
    case 'all_gather': {
      const chunk = fill(counts[me], (i) => value(me, offs[me] + i));
      const owner = (i: number) => offs.findIndex((o, r) => i >= o && i < offs[r + 1]);
      const out = new Float32Array(floats);
      const call = async () => void (await g.allGather(chunk, counts, out));
      return { call, first: async () => firstMismatch(await g.allGather(chunk, counts, out), (i) => value(owner(i), i), floats) };
    }
    case 'all_to_all': {
      const send = fill(floats, (i) => {
        const p = offs.findIndex((o, r) => i >= o && i < offs[r + 1]);
        return value(me + 17 * p, i - offs[p]);
      });
      const recv = Array.from({ length: n }, () => counts[me]);
      const ro = offsets(recv);
      const from = (i: number) => ro.findIndex((o, r) => i >= o && i < ro[r + 1]);
      const out = new Float32Array(ro[n]);
      const call = async () => void (await g.allToAllV(send, counts, recv, out));
      return { call, first: async () => firstMismatch(await g.allToAllV(send, counts, recv, out), (i) => value(from(i) + 17 * me, i - ro[from(i)]), ro[n]) };
    }
    case 'broadcast': {
      const buf = me === 0 ? fill(floats, (i) => value(0, i)) : new Float32Array(floats);
      const call = () => g.broadcast(buf, 0);
      return { call, first: async () => (await call(), firstMismatch(buf, (i) => value(0, i), floats)) };
    }
    case 'sendrecv': {
      const msg = fill(floats, (i) => value(0, i));
      const call = async () => {
        if (me === 0) {
          await g.send(1, msg);
          await g.recv(1);
        } else if (me === 1) await g.send(0, await g.recv(0));
      };
      const first = async () => {
        if (me === 0) {
          await g.send(1, msg);
          return firstMismatch(await g.recv(1), (i) => value(0, i), floats);
        }
        if (me === 1) await g.send(0, await g.recv(0));
        return null;
      };
      return { call, first };
    }
  }
}

async function runRow(g: Communicator, op: BenchOp, bytes: number, iters: number): Promise<BenchRow> {
  const floats = Math.floor(bytes / 4);
  const { first, call } = prepare(g, op, floats);
  await g.barrier();
  const bad = await first();
  const warm = Math.max(2, Math.floor(iters / 10));
  for (let i = 0; i < warm; i++) await call();
  await g.barrier();
  const us: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t = performance.now();
    await call();
    us.push((performance.now() - t) * 1000);
  }
  const half = op === 'sendrecv';
  return { op, bytes, us: half ? (g.rank === 0 ? us.map((u) => u / 2) : []) : us, ok: bad === null, ...(bad ? { detail: `rank ${g.rank}: ${bad}` } : {}) };
}

async function run(job: BenchJob): Promise<BenchReply> {
  if (job.pin) pinToCpus(job.pin);
  const world = await joinWorld(job.setup, job.rank);
  const g = world.group('all');
  const rows: BenchRow[] = [];
  for (const op of job.ops) {
    for (const bytes of job.sizes) rows.push(await runRow(g, op, bytes, job.iters ?? defaultIters(bytes)));
  }
  await g.barrier();
  world.close();
  return { rows };
}

if (process.send) {
  // Never outlive the process that forked us.
  process.once('disconnect', () => process.exit(1));
  process.once('message', (job: BenchJob) => {
    run(job).then(
      (reply) => process.send!(reply, () => process.exit(0)),
      (e: Error) => process.send!({ error: e.message } satisfies BenchReply, () => process.exit(1)),
    );
  });
}
