/**
 * Continuous batching on the host: requests arrive over (wall-clock) time,
 * JOIN a replica's running batch between steps and LEAVE it when done, so
 * every decode step is ONE batched forward over all running sequences even
 * though their lengths differ (Orca's iteration-level scheduling, vLLM's
 * scheduler in its simplest form).
 *
 * Per DP replica, a loop repeats (vLLM V0's prefill-first policy):
 *   1. if requests wait and the running batch has room (maxBatch): prefill the
 *      oldest waiting request together with the other waiting requests of the
 *      same prompt length, as a step of its own; their KV joins the running
 *      batch on the ranks (serve-prefill), their first token comes out;
 *   2. otherwise one decode step for every running sequence (serve-step);
 *   3. finished sequences leave the batch at the start of the next message.
 * Replicas run their loops concurrently; a request is routed, at its
 * arrival, to the replica with the fewest requests running or waiting.
 *
 * The ranks keep the running batch as a ragged batch (rank/serving-pool.ts): each
 * row has its own length; the KV is repacked only when membership changes.
 * Under PP the running batch is split into the spec's micro-batches, so
 * decode steps fill the pipeline as `generate`'s do.
 *
 * Where the ranks cannot run ragged batches (sequence / expert parallel
 * blocks keep their own per-batch state), `serve` falls back to batches of
 * one request through `engine.generate`, one in flight per replica, and says
 * so in `notes` (host/serving-fallback.ts).
 *
 * Steps go through the host's one step loop (host/step.ts: stepLane,
 * takeToken), so they are metered like every other step.
 */
import { formatSpec } from '../parallel/spec';
import { route } from '../parallel/dp/route';
import type { RankRequest, SeqSampling } from '../rank/protocol';
import type { Engine } from './engine';
import { eosSet, stepLane, stepTimeoutMs, takeToken } from './step';
import type { Replica } from './step';
import { serveOneAtATime } from './serving-fallback';
import type { ServeOptions, ServeRequest, ServeResult, ServedRequest, ServeStepLog } from './serve-types';

export type { ServeOptions, ServeRequest, ServeResult, ServedRequest, ServeStepLog } from './serve-types';

interface Pending extends ServeRequest {
  out: ServedRequest;
}

/** Serve `reqs` (arrival times relative to now) with continuous batching on `engine`. */
export async function serve(engine: Engine, reqs: ServeRequest[], o: ServeOptions = {}): Promise<ServeResult> {
  const maxBatch = Math.max(1, o.maxBatch ?? 16);
  for (const r of reqs) {
    if (r.prompt.length === 0) throw new Error('a serving request has an empty prompt; give at least one token');
    engine.checkTokens(r.prompt);
    engine.checkFits(r.prompt.length, r.maxNewTokens);
  }
  if (new Set(reqs.map((r) => r.id)).size !== reqs.length) throw new Error('serving requests need distinct ids');
  const replicas = engine.replicas;
  const pool = `pool-${engine.nextBatchId()}`;
  const notes: string[] = [];
  // Every rank of every replica opens the pool; a rank whose executor keeps
  // per-batch state outside the KV cache (SP / MoE blocks) says it cannot.
  const opened = await Promise.all(replicas.flatMap((rep) => rep.ranks.map((r) => engine.cluster.request(r, { type: 'serve-open', pool }))));
  const refused = opened.find((x) => !x.ragged);
  if (refused) {
    await closePools(engine, pool);
    notes.push(`continuous batching is not available for '${formatSpec(engine.spec)}' (${refused.reason}); requests ran one at a time per replica`);
    return { ...(await serveOneAtATime(engine, reqs, o)), notes };
  }

  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const eos = eosSet(engine.config, o);
  const steps: ServeStepLog[] = [];
  const total = reqs.length;
  let finished = 0;
  const all: Pending[] = reqs.map((r) => ({ ...r, out: { id: r.id, arrivalMs: r.arrivalMs, firstScheduledMs: NaN, tokenMs: [], tokens: [], promptLen: r.prompt.length, finish: 'length', replica: -1 } }));

  interface Lane {
    d: number;
    replica: Replica;
    waiting: Pending[];
    /** request ids in the ranks' row order */
    rows: Pending[];
    leave: number[];
    wake: (() => void) | null;
  }
  const lanes: Lane[] = replicas.map((replica, d) => ({ d, replica, waiting: [], rows: [], leave: [], wake: null }));
  const load = lanes.map(() => 0);
  const counter = { next: 0 };
  let dispatched = 0;
  let failure: unknown = null;

  // Arrivals: one timer at a time, for the earliest request still to come.
  // When it fires, every request whose arrival time has come is routed in the
  // same tick, so requests arriving together are admitted together (one
  // prefill step when their lengths match) however late the timer fires.
  const pending = [...all].sort((a, b) => a.arrivalMs - b.arrivalMs);
  let timer: NodeJS.Timeout | null = null;
  const pump = () => {
    timer = null;
    const woken = new Set<Lane>();
    while (pending.length > 0 && pending[0].arrivalMs <= now()) {
      const r = pending.shift()!;
      const d = route('least-loaded', 1, load, counter)[0];
      r.out.replica = d;
      lanes[d].waiting.push(r);
      dispatched++;
      woken.add(lanes[d]);
    }
    for (const l of dispatched === total ? lanes : woken) l.wake?.();
    if (pending.length > 0) timer = setTimeout(pump, Math.max(0, pending[0].arrivalMs - now()));
  };
  timer = setTimeout(pump, Math.max(0, (pending[0]?.arrivalMs ?? 0) - now()));

  /** Record the sampled tokens of `seqs`; the ones that end go to `lane.leave`. */
  const take = (lane: Lane, seqs: Pending[], tokens: number[], at: number) => {
    seqs.forEach((r, i) => {
      r.out.tokenMs.push(at);
      if (!takeToken(r.out, tokens[i], { eos, maxNewTokens: r.maxNewTokens })) return;
      lane.leave.push(r.id);
      load[lane.d]--;
      finished++;
      o.onFinish?.(r.out, finished, total);
    });
  };

  const runLane = async (lane: Lane) => {
    const step = async (msg: RankRequest<'serve-prefill' | 'serve-step'>, B: number, S: number) => {
      const [results] = await stepLane(engine, [lane.replica], () => msg, { B, S }, stepTimeoutMs(B * S));
      return results[lane.replica.ranks.indexOf(lane.replica.sampler)].tokens!;
    };
    for (;;) {
      if (failure) return;
      const running = lane.rows.length - lane.leave.length;
      if (lane.waiting.length > 0 && running < maxBatch) {
        // Drop the finished rows first (the ranks do the same, in the same order).
        const leave = lane.leave;
        lane.rows = lane.rows.filter((r) => !leave.includes(r.id));
        lane.leave = [];
        const S = lane.waiting[0].prompt.length;
        const group: Pending[] = [];
        for (const r of lane.waiting) if (r.prompt.length === S && group.length < maxBatch - lane.rows.length) group.push(r);
        lane.waiting = lane.waiting.filter((r) => !group.includes(r));
        const start = now();
        for (const r of group) r.out.firstScheduledMs = start;
        const sampling: SeqSampling[] = group.map((r) => ({ params: r.sampling ?? { greedy: true }, seed: (r.seed ?? r.id * 7919) >>> 0 }));
        const tokens = await step({ type: 'serve-prefill', pool, leave, ids: group.map((r) => r.id), sampling, S, tokens: Int32Array.from(group.flatMap((r) => r.prompt)), trace: engine.meter.tracing }, group.length, S);
        const end = now();
        steps.push({ replica: lane.d, kind: 'prefill', startMs: start, endMs: end, batch: group.length, S });
        lane.rows.push(...group);
        take(lane, group, tokens, end);
        continue;
      }
      if (running > 0) {
        const leave = lane.leave;
        lane.rows = lane.rows.filter((r) => !leave.includes(r.id));
        lane.leave = [];
        const B = lane.rows.length;
        const start = now();
        const tokens = await step({ type: 'serve-step', pool, leave, tokens: Int32Array.from(lane.rows.map((r) => r.out.tokens[r.out.tokens.length - 1])), trace: engine.meter.tracing }, B, 1);
        const end = now();
        steps.push({ replica: lane.d, kind: 'decode', startMs: start, endMs: end, batch: B, S: 1 });
        take(lane, lane.rows, tokens, end);
        continue;
      }
      if (dispatched === total && lane.waiting.length === 0) return;
      await new Promise<void>((resolve) => {
        lane.wake = () => {
          lane.wake = null;
          resolve();
        };
      });
    }
  };

  try {
    await Promise.all(
      lanes.map((l) =>
        runLane(l).catch((e) => {
          failure ??= e;
          for (const x of lanes) x.wake?.();
        }),
      ),
    );
    if (failure) throw failure;
  } finally {
    if (timer) clearTimeout(timer);
    await closePools(engine, pool);
  }
  const durationMs = Math.max(0, ...all.map((r) => r.out.tokenMs[r.out.tokenMs.length - 1] ?? 0));
  return { requests: all.map((r) => r.out), steps, durationMs, mode: 'continuous', notes };
}

async function closePools(engine: Engine, pool: string): Promise<void> {
  if (engine.cluster.failed) return;
  await engine.cluster.broadcast({ type: 'serve-close', pool }).catch(() => undefined);
}
