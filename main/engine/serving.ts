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
 * The ranks keep the running batch as a ragged batch (serving-kv.ts): each
 * row has its own length; the KV is repacked only when membership changes.
 * Under PP the running batch is split into the spec's micro-batches, so
 * decode steps fill the pipeline as `generate`'s do.
 *
 * Where the ranks cannot run ragged batches (sequence / expert parallel
 * blocks keep their own per-batch state), `serve` falls back to batches of
 * one request through `engine.generate`, one in flight per replica, and says
 * so in `notes`.
 */
import type { Engine } from './engine';
import type { SamplingParams } from '../lab/contract';
import type { SeqSampling, StepResult } from './worker/protocol';
import { stepComm } from './parallel/expected';
import { route } from './parallel/route';

export interface ServeRequest {
  id: number;
  /** ms after the start of `serve` at which the request arrives */
  arrivalMs: number;
  prompt: number[];
  maxNewTokens: number;
  sampling?: SamplingParams;
  seed?: number;
}

export interface ServeOptions {
  /** most sequences in one replica's running batch (default 16) */
  maxBatch?: number;
  eosIds?: number[];
  ignoreEos?: boolean;
  /** a request finished (all its tokens are out) */
  onFinish?: (r: ServedRequest, done: number, total: number) => void;
}

export interface ServedRequest {
  id: number;
  arrivalMs: number;
  /** when its prefill step began */
  firstScheduledMs: number;
  /** when each output token came out (ms since the start of `serve`) */
  tokenMs: number[];
  tokens: number[];
  promptLen: number;
  finish: 'length' | 'eos' | 'stop';
  replica: number;
}

export interface ServeStepLog {
  replica: number;
  kind: 'prefill' | 'decode';
  startMs: number;
  endMs: number;
  /** sequences in the step */
  batch: number;
  /** new tokens per sequence */
  S: number;
}

export interface ServeResult {
  requests: ServedRequest[];
  steps: ServeStepLog[];
  /** from the start of `serve` to the last token */
  durationMs: number;
  mode: 'continuous' | 'one-at-a-time';
  notes: string[];
}

interface Pending extends ServeRequest {
  out: ServedRequest;
}

let poolCounter = 0;

/** Serve `reqs` (arrival times relative to now) with continuous batching on `engine`. */
export async function serve(engine: Engine, reqs: ServeRequest[], o: ServeOptions = {}): Promise<ServeResult> {
  const maxBatch = Math.max(1, o.maxBatch ?? 16);
  for (const r of reqs) {
    checkPrompt(engine, r.prompt);
    engine.checkFits(r.prompt.length, r.maxNewTokens);
  }
  if (new Set(reqs.map((r) => r.id)).size !== reqs.length) throw new Error('serving requests need distinct ids');
  const replicas = engine.replicas;
  const pool = `pool${++poolCounter}`;
  const notes: string[] = [];
  // Every rank of every replica opens the pool; a rank whose executor keeps
  // per-batch state outside the KV cache (SP / MoE blocks) says it cannot.
  const opened = (await Promise.all(replicas.flatMap((rep) => rep.ranks.map((r) => engine.cluster.request(r, { type: 'serve-open', pool }))))) as { ragged: boolean; reason: string | null }[];
  const refused = opened.find((x) => !x.ragged);
  if (refused) {
    await closePools(engine, pool);
    notes.push(`continuous batching is not available for '${engine.spec.world > 1 ? specText(engine) : 'single'}' (${refused.reason}); requests ran one at a time per replica`);
    return { ...(await serveOneAtATime(engine, reqs, o)), notes };
  }

  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const eos = new Set(o.ignoreEos ? [] : (o.eosIds ?? engine.config.eosTokenIds));
  const steps: ServeStepLog[] = [];
  const total = reqs.length;
  let finished = 0;
  const all: Pending[] = reqs.map((r) => ({ ...r, out: { id: r.id, arrivalMs: r.arrivalMs, firstScheduledMs: NaN, tokenMs: [], tokens: [], promptLen: r.prompt.length, finish: 'length', replica: -1 } }));

  interface Lane {
    d: number;
    ranks: number[];
    sampler: number;
    waiting: Pending[];
    /** request ids in the ranks' row order */
    rows: Pending[];
    leave: number[];
    wake: (() => void) | null;
  }
  const lanes: Lane[] = replicas.map((rep, d) => ({ d, ranks: rep.ranks, sampler: rep.sampler, waiting: [], rows: [], leave: [], wake: null }));
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

  const account = (lane: Lane, results: StepResult[], B: number, S: number, micro: number) => {
    results.forEach((res, j) => {
      const rank = lane.ranks[j];
      stepComm(engine.expectedComm[rank], engine.roles[rank], engine.mesh.place(rank), engine.config, B, S, micro);
      engine.recordRankStep(rank, res);
    });
  };

  /** Record the sampled tokens of `seqs`; the ones that end go to `lane.leave`. */
  const take = (lane: Lane, seqs: Pending[], tokens: number[], at: number) => {
    seqs.forEach((r, i) => {
      const t = tokens[i];
      r.out.tokens.push(t);
      r.out.tokenMs.push(at);
      let end = false;
      if (eos.has(t)) {
        r.out.finish = 'eos';
        end = true;
      } else if (r.out.tokens.length >= r.maxNewTokens) {
        r.out.finish = 'length';
        end = true;
      }
      if (end) {
        lane.leave.push(r.id);
        load[lane.d]--;
        finished++;
        o.onFinish?.(r.out, finished, total);
      }
    });
  };

  const runLane = async (lane: Lane) => {
    const ask = (msg: Parameters<Engine['cluster']['request']>[1], tokens: number) =>
      Promise.all(lane.ranks.map((r) => engine.cluster.request(r, msg, 60_000 + tokens * 100))) as Promise<StepResult[]>;
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
        const results = await ask(
          { type: 'serve-prefill', pool, leave, ids: group.map((r) => r.id), sampling, S, tokens: Int32Array.from(group.flatMap((r) => r.prompt)), trace: engine.tracing },
          group.length * S,
        );
        const end = now();
        steps.push({ replica: lane.d, kind: 'prefill', startMs: start, endMs: end, batch: group.length, S });
        account(lane, results, group.length, S, engine.spec.pp > 1 ? engine.spec.micro : 1);
        lane.rows.push(...group);
        take(lane, group, results[lane.ranks.indexOf(lane.sampler)].tokens!, end);
        continue;
      }
      if (running > 0) {
        const leave = lane.leave;
        lane.rows = lane.rows.filter((r) => !leave.includes(r.id));
        lane.leave = [];
        const B = lane.rows.length;
        const start = now();
        const results = await ask({ type: 'serve-step', pool, leave, tokens: Int32Array.from(lane.rows.map((r) => r.out.tokens[r.out.tokens.length - 1])), trace: engine.tracing }, B);
        const end = now();
        steps.push({ replica: lane.d, kind: 'decode', startMs: start, endMs: end, batch: B, S: 1 });
        account(lane, results, B, 1, engine.spec.pp > 1 ? engine.spec.micro : 1);
        take(lane, lane.rows, results[lane.ranks.indexOf(lane.sampler)].tokens!, end);
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

function specText(engine: Engine): string {
  const s = engine.spec;
  return (['dp', 'pp', 'tp', 'sp', 'ep'] as const)
    .filter((k) => s[k] > 1)
    .map((k) => `${k}=${s[k]}`)
    .join(',');
}

function checkPrompt(engine: Engine, p: number[]): void {
  if (p.length === 0) throw new Error('a serving request has an empty prompt; give at least one token');
  const V = engine.config.vocabSize;
  for (const t of p) if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`token id ${t} is out of range for this model's vocabulary of ${V} (valid: 0..${V - 1})`);
}

/**
 * The fallback: each replica serves one request at a time through
 * `engine.generate` (which routes to the least-loaded replica), in arrival
 * order, as soon as the request has arrived.
 */
async function serveOneAtATime(engine: Engine, reqs: ServeRequest[], o: ServeOptions): Promise<Omit<ServeResult, 'notes'>> {
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const queue = [...reqs].sort((a, b) => a.arrivalMs - b.arrivalMs);
  const out: ServedRequest[] = [];
  const steps: ServeStepLog[] = [];
  let finished = 0;
  const lane = async () => {
    for (;;) {
      const r = queue.shift();
      if (!r) return;
      const wait = r.arrivalMs - now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      const s: ServedRequest = { id: r.id, arrivalMs: r.arrivalMs, firstScheduledMs: now(), tokenMs: [], tokens: [], promptLen: r.prompt.length, finish: 'length', replica: -1 };
      let last = s.firstScheduledMs;
      const { outputs } = await engine.generate([r.prompt], {
        maxNewTokens: r.maxNewTokens,
        sampling: r.sampling ?? { greedy: true },
        seed: r.seed ?? r.id * 7919,
        eosIds: o.eosIds,
        ignoreEos: o.ignoreEos,
        onToken: () => {
          const t = now();
          steps.push({ replica: -1, kind: s.tokenMs.length === 0 ? 'prefill' : 'decode', startMs: last, endMs: t, batch: 1, S: s.tokenMs.length === 0 ? r.prompt.length : 1 });
          s.tokenMs.push(t);
          last = t;
        },
      });
      s.tokens = outputs[0].tokens;
      s.finish = outputs[0].finish;
      // generate() does not call onToken for an EOS token; it came out at the end.
      while (s.tokenMs.length < s.tokens.length) s.tokenMs.push(now());
      out.push(s);
      finished++;
      o.onFinish?.(s, finished, reqs.length);
    }
  };
  await Promise.all(Array.from({ length: engine.spec.dp }, lane));
  out.sort((a, b) => a.id - b.id);
  const durationMs = Math.max(0, ...out.map((r) => r.tokenMs[r.tokenMs.length - 1] ?? 0));
  return { requests: out, steps, durationMs, mode: 'one-at-a-time' };
}
