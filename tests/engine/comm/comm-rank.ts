/**
 * A rank for the communicator tests (forked with `--import tsx`): joins the
 * world the test prepared, runs every collective on inputs that are a known
 * function of (rank, size, variant) — see cases.ts — and sends back what it
 * got, its ledger and its socket byte counters. With `die`, it kills itself
 * (SIGKILL: no exit hooks run) in the middle of the run; with `hang`, it
 * joins and then never takes part.
 */
import { asF32, asI32 } from '../../../main/engine/comm/communicator';
import type { Communicator } from '../../../main/engine/comm/communicator';
import { joinWorld } from '../../../main/engine/comm/world';
import { a2aCounts, gatherCounts, input, intPayload, p2pLength } from './cases';
import type { RankJob, RankReply } from './cases';

async function collectives(g: Communicator, len: number, out: Record<string, Float32Array | Int32Array>): Promise<void> {
  const { rank: me, size: n } = g;
  const ar = input(me, len, 0);
  await g.allReduce(ar);
  out[`allReduce:${len}`] = ar;

  const counts = gatherCounts(n, len);
  const total = counts.reduce((a, b) => a + b, 0);
  out[`reduceScatter:${len}`] = await g.reduceScatter(input(me, total, 1), counts);
  out[`allGather:${len}`] = await g.allGather(input(me, counts[me], 2), counts);
  out[`allGatherLearned:${len}`] = await g.allGather(input(me, counts[me], 3));

  const sc = a2aCounts(n, len, me);
  const send = input(me, sc.reduce((a, b) => a + b, 0), 4);
  out[`allToAll:${len}`] = await g.allToAllV(send, sc, null);
  const rc = Array.from({ length: n }, (_, r) => a2aCounts(n, len, r)[me]);
  out[`allToAllKnown:${len}`] = await g.allToAllV(send, sc, rc);

  const b = me === n - 1 ? input(99, len, 5) : new Float32Array(len);
  await g.broadcast(b, n - 1);
  out[`broadcast:${len}`] = b;
}

/** Every rank sends every peer two messages (tags 1 and 2) and receives them in the other order. */
async function pointToPoint(g: Communicator, len: number, out: Record<string, Float32Array | Int32Array>): Promise<void> {
  const { rank: me, size: n } = g;
  const peers = Array.from({ length: n }, (_, r) => r).filter((r) => r !== me);
  const sends = peers.flatMap((p) => [g.send(p, input(me, p2pLength(len, me, p), 10 + p), 1), g.send(p, input(me, 3 + me, 20 + p), 2)]);
  const got = await Promise.all(peers.map(async (p) => [p, await g.recv(p, 2), await g.recv(p, 1)] as const));
  await Promise.all(sends);
  for (const [p, t2, t1] of got) {
    out[`recv1:${len}:${p}`] = t1;
    out[`recv2:${len}:${p}`] = t2;
  }
}

async function run(job: RankJob): Promise<RankReply> {
  const world = await joinWorld(job.setup, job.rank);
  const g = world.group('all');
  const out: Record<string, Float32Array | Int32Array> = {};
  out.ints = asI32(await g.allGather(asF32(intPayload(g.rank))));
  if (job.hang === job.rank) await new Promise(() => setInterval(() => undefined, 1000));
  for (const [k, len] of job.sizes.entries()) {
    if (job.die?.rank === job.rank && job.die.at === k) process.kill(process.pid, 'SIGKILL');
    await collectives(g, len, out);
    await pointToPoint(g, len, out);
    await g.barrier();
  }
  const reply: RankReply = { out, ledger: world.ledger.summary(), wire: world.wireBytes() };
  world.close();
  return reply;
}

// Never outlive the process that forked us.
process.once('disconnect', () => process.exit(1));
process.once('message', (job: RankJob) => {
  run(job).then(
    (reply) => process.send!(reply, () => process.exit(0)),
    (e: Error) => process.send!({ error: `${e.name}: ${e.message}` } satisfies RankReply, () => process.exit(1)),
  );
});
