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
 * Under PP (engine.ppOverlap, the default) a replica runs `micro` lanes of
 * its own, each with its own running batch, queue and loop, and requests
 * are routed over all lanes: a lane sends its next step as soon as its last
 * one is back, so while the last stage finishes lane B's step the first
 * stage already runs lane A's (vLLM's virtual engines: the pipeline does
 * not drain between steps). The lanes share the replica's maxBatch. With
 * overlap off, one lane per replica whose steps are cut into micro-batches.
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
import { eosSet, stepLane, takeToken } from './step';
import type { Replica } from './step';
import { serveOneAtATime } from './serving-fallback';
import type { ServeOptions, ServeRequest, ServeResult, ServedRequest, ServeStepLog } from './serve-types';

export type { ServeOptions, ServeRequest, ServeResult, ServedRequest, ServeStepLog } from './serve-types';

interface Pending extends ServeRequest {
  out: ServedRequest;
}

/** One running batch and queue of a data-parallel replica (`micro` of them per replica under PP overlap). */
interface Lane {
  /** index in the scheduler's lanes (what routing balances) */
  i: number;
  d: number;
  /** which of its replica's lanes */
  v: number;
  /** the ranks' pool of this lane */
  pool: string;
  /** most running rows */
  cap: number;
  replica: Replica;
  waiting: Pending[];
  /** requests in the ranks' row order */
  rows: Pending[];
  /** ids of rows that finished and leave before the next step */
  leave: number[];
  wake: (() => void) | null;
}

/** Serve `reqs` (arrival times relative to now) with continuous batching on `engine`. */
export async function serve(engine: Engine, reqs: ServeRequest[], o: ServeOptions = {}): Promise<ServeResult> {
  for (const r of reqs) {
    if (r.prompt.length === 0) throw new Error('a serving request has an empty prompt; give at least one token');
    engine.checkTokens(r.prompt);
    engine.checkFits(r.prompt.length, r.maxNewTokens);
  }
  if (new Set(reqs.map((r) => r.id)).size !== reqs.length) throw new Error('serving requests need distinct ids');
  const maxBatch = Math.max(1, o.maxBatch ?? 16);
  const V = engine.inFlight(maxBatch);
  const base = `pool-${engine.nextBatchId()}`;
  const pools = Array.from({ length: V }, (_, v) => (V > 1 ? `${base}.${v}` : base));
  // Every rank of every replica opens the pools; a rank whose executor keeps
  // per-batch state outside the KV cache (SP / MoE blocks) says it cannot.
  const opened = await Promise.all(engine.replicas.flatMap((rep) => rep.ranks.flatMap((r) => pools.map((pool) => engine.cluster.request(r, { type: 'serve-open', pool, ...(V > 1 ? { micro: 1 } : {}) })))));
  const refused = opened.find((x) => !x.ragged);
  if (refused) {
    await closePools(engine, pools);
    const note = `continuous batching is not available for '${formatSpec(engine.spec)}' (${refused.reason}); requests ran one at a time per replica`;
    return { ...(await serveOneAtATime(engine, reqs, o)), notes: [note] };
  }
  const scheduler = new Scheduler(engine, pools, reqs, o);
  try {
    return await scheduler.run();
  } finally {
    await closePools(engine, pools);
  }
}

class Scheduler {
  private readonly t0 = performance.now();
  private readonly eos: Set<number>;
  private readonly steps: ServeStepLog[] = [];
  private readonly all: Pending[];
  private readonly lanes: Lane[];
  /** pipeline micro-batches per step: 1 when a replica's lanes overlap, else the spec's (undefined) */
  private readonly micro: number | undefined;
  /** requests running or waiting per lane (what routing balances) */
  private readonly load: number[];
  private readonly counter = { next: 0 };
  /** not yet arrived, by arrival time */
  private readonly pending: Pending[];
  private timer: NodeJS.Timeout | null = null;
  private dispatched = 0;
  private finished = 0;
  private failure: unknown = null;

  constructor(
    private readonly engine: Engine,
    pools: string[],
    reqs: ServeRequest[],
    private readonly o: ServeOptions,
  ) {
    const maxBatch = Math.max(1, o.maxBatch ?? 16);
    this.eos = eosSet(engine.config, o);
    this.all = reqs.map((r) => ({ ...r, out: { id: r.id, arrivalMs: r.arrivalMs, firstScheduledMs: NaN, tokenMs: [], tokens: [], promptLen: r.prompt.length, finish: 'length', replica: -1, lane: 0 } }));
    // the replica's maxBatch shared by its lanes (the first ones take the remainder)
    const V = pools.length;
    const cap = (v: number) => Math.floor(maxBatch / V) + (v < maxBatch % V ? 1 : 0);
    this.micro = V > 1 ? 1 : undefined;
    this.lanes = engine.replicas.flatMap((replica, d) => pools.map((pool, v) => ({ i: d * V + v, d, v, pool, cap: cap(v), replica, waiting: [], rows: [], leave: [], wake: null })));
    this.load = this.lanes.map(() => 0);
    this.pending = [...this.all].sort((a, b) => a.arrivalMs - b.arrivalMs);
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  async run(): Promise<ServeResult> {
    this.timer = setTimeout(() => this.pump(), Math.max(0, (this.pending[0]?.arrivalMs ?? 0) - this.now()));
    try {
      await Promise.all(
        this.lanes.map((l) =>
          this.runLane(l).catch((e) => {
            this.failure ??= e;
            for (const x of this.lanes) x.wake?.();
          }),
        ),
      );
      if (this.failure) throw this.failure;
    } finally {
      if (this.timer) clearTimeout(this.timer);
    }
    const durationMs = Math.max(0, ...this.all.map((r) => r.out.tokenMs[r.out.tokenMs.length - 1] ?? 0));
    return { requests: this.all.map((r) => r.out), steps: this.steps, durationMs, mode: 'continuous', notes: [] };
  }

  /**
   * Arrivals: one timer at a time, for the earliest request still to come.
   * When it fires, every request whose arrival time has come is routed in the
   * same tick, so requests arriving together are admitted together (one
   * prefill step when their lengths match) however late the timer fires.
   */
  private pump(): void {
    this.timer = null;
    const woken = new Set<Lane>();
    while (this.pending.length > 0 && this.pending[0].arrivalMs <= this.now()) {
      const r = this.pending.shift()!;
      const lane = this.lanes[route('least-loaded', 1, this.load, this.counter)[0]];
      r.out.replica = lane.d;
      r.out.lane = lane.v;
      lane.waiting.push(r);
      this.dispatched++;
      woken.add(lane);
    }
    for (const l of this.dispatched === this.all.length ? this.lanes : woken) l.wake?.();
    if (this.pending.length > 0) this.timer = setTimeout(() => this.pump(), Math.max(0, this.pending[0].arrivalMs - this.now()));
  }

  /** A replica's loop (vLLM V0's prefill-first policy): prefill what waits if there is room, else decode, else sleep until woken. */
  private async runLane(lane: Lane): Promise<void> {
    for (;;) {
      if (this.failure) return;
      const running = lane.rows.length - lane.leave.length;
      if (lane.waiting.length > 0 && running < lane.cap) await this.prefill(lane);
      else if (running > 0) await this.decode(lane);
      else if (this.dispatched === this.all.length && lane.waiting.length === 0) return;
      else await this.sleep(lane);
    }
  }

  /** Until an arrival (or a failure elsewhere) wakes this lane. */
  private sleep(lane: Lane): Promise<void> {
    return new Promise<void>((resolve) => {
      lane.wake = () => {
        lane.wake = null;
        resolve();
      };
    });
  }

  /** The finished rows drop out (the ranks do the same, in the same order); returns their ids for the message. */
  private dropFinished(lane: Lane): number[] {
    const leave = lane.leave;
    lane.rows = lane.rows.filter((r) => !leave.includes(r.id));
    lane.leave = [];
    return leave;
  }

  /** Prefill the oldest waiting request with the other waiting ones of its prompt length; they join the running batch. */
  private async prefill(lane: Lane): Promise<void> {
    const leave = this.dropFinished(lane);
    const S = lane.waiting[0].prompt.length;
    const group: Pending[] = [];
    for (const r of lane.waiting) if (r.prompt.length === S && group.length < lane.cap - lane.rows.length) group.push(r);
    lane.waiting = lane.waiting.filter((r) => !group.includes(r));
    const start = this.now();
    for (const r of group) r.out.firstScheduledMs = start;
    const sampling: SeqSampling[] = group.map((r) => ({ params: r.sampling ?? { greedy: true }, seed: (r.seed ?? r.id * 7919) >>> 0 }));
    const tokens = await this.step(lane, { type: 'serve-prefill', pool: lane.pool, leave, ids: group.map((r) => r.id), sampling, S, tokens: Int32Array.from(group.flatMap((r) => r.prompt)), trace: this.engine.meter.tracing }, group.length, S);
    const end = this.now();
    this.steps.push({ replica: lane.d, lane: lane.v, kind: 'prefill', startMs: start, endMs: end, batch: group.length, S });
    lane.rows.push(...group);
    this.take(lane, group, tokens, end);
  }

  /** One decode step for every running row. */
  private async decode(lane: Lane): Promise<void> {
    const leave = this.dropFinished(lane);
    const B = lane.rows.length;
    const start = this.now();
    const last = Int32Array.from(lane.rows.map((r) => r.out.tokens[r.out.tokens.length - 1]));
    const tokens = await this.step(lane, { type: 'serve-step', pool: lane.pool, leave, tokens: last, trace: this.engine.meter.tracing }, B, 1);
    const end = this.now();
    this.steps.push({ replica: lane.d, lane: lane.v, kind: 'decode', startMs: start, endMs: end, batch: B, S: 1 });
    this.take(lane, lane.rows, tokens, end);
  }

  /** Through the host's one step loop: every rank of the replica, metered; the sampler's tokens. */
  private async step(lane: Lane, msg: RankRequest<'serve-prefill' | 'serve-step'>, B: number, S: number): Promise<number[]> {
    const [results] = await stepLane(this.engine, [lane.replica], () => msg, { B, S, micro: this.micro });
    return results[lane.replica.ranks.indexOf(lane.replica.sampler)].tokens!;
  }

  /** Record the sampled tokens of `seqs`; the ones that end go to `lane.leave`. */
  private take(lane: Lane, seqs: Pending[], tokens: number[], at: number): void {
    seqs.forEach((r, i) => {
      r.out.tokenMs.push(at);
      if (!takeToken(r.out, tokens[i], { eos: this.eos, maxNewTokens: r.maxNewTokens })) return;
      lane.leave.push(r.id);
      this.load[lane.i]--;
      this.finished++;
      this.o.onFinish?.(r.out, this.finished, this.all.length);
    });
  }
}

async function closePools(engine: Engine, pools: string[]): Promise<void> {
  if (engine.cluster.failed) return;
  await Promise.all(pools.map((pool) => engine.cluster.broadcast({ type: 'serve-close', pool }))).catch(() => undefined);
}
