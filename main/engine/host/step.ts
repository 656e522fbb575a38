/**
 * The one step loop of the host. Every way the engine runs — a batch of
 * prompts (generate), the replicas of an expert-parallel lockstep set, the
 * continuous-batching scheduler (host/serving.ts) — steps its ranks through
 * `stepLane` (one message to every rank of a lane, one accounting through
 * the Meter) and ends sequences through `takeToken` (EOS, stop, length).
 *
 * A lane is a set of data-parallel replicas that step together: one replica
 * on its own, or the replicas whose ranks share an ep group
 * (parallel/ep/lockstep.ts). A replica with fewer sequences than the lane's
 * largest is padded with ghost sequences (never sampled, never routed).
 */
import type { SamplingParams } from '../types';
import type { ModelConfig } from '../model/types';
import type { RankRole } from '../parallel/plan';
import { SpHistory } from '../parallel/sp/layout';
import type { RankRequest, SeqSampling, StepResult } from '../rank/protocol';
import { ClusterError } from './errors';
import type { Cluster } from './cluster';
import type { Meter, StepShape } from './meter';

/** The requests that run a step (each answers with a StepResult). */
type StepKind = 'step' | 'serve-prefill' | 'serve-step';

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: SamplingParams;
  /** one seed per sequence is derived from it */
  seed?: number;
  wantLogits?: boolean;
  /** ends a sequence; return 'stop' to end it too (stop strings) */
  onToken?: (seq: number, tokenId: number) => 'stop' | void;
  eosIds?: number[];
  ignoreEos?: boolean;
}

export interface SeqOutput {
  tokens: number[];
  finish: 'length' | 'eos' | 'stop';
  /** last-position logits before each generated token (wantLogits) */
  logits: Float32Array[];
}

/** The ranks of one data-parallel replica and the one that samples for it. */
export interface Replica {
  ranks: number[];
  sampler: number;
}

/** What the loop needs of the engine. */
export interface LoopHost {
  readonly cluster: Cluster;
  readonly meter: Meter;
  readonly config: ModelConfig;
  readonly roles: RankRole[];
  /** a batch / pool id no other open batch of this cluster has */
  nextBatchId(): string;
}

/** How a sequence ends: EOS (unless ignored), a stop verdict from the caller, or its length. */
export interface FinishRules {
  eos: Set<number>;
  maxNewTokens: number;
  onToken?: (token: number) => 'stop' | void;
}

export function eosSet(config: ModelConfig, o: Pick<GenerateOptions, 'eosIds' | 'ignoreEos'>): Set<number> {
  return new Set(o.ignoreEos ? [] : (o.eosIds ?? config.eosTokenIds));
}

/** Append a sampled token to a sequence's output; true when it ends the sequence (its finish set). */
export function takeToken(out: { tokens: number[]; finish: SeqOutput['finish'] }, token: number, rules: FinishRules): boolean {
  out.tokens.push(token);
  if (rules.eos.has(token)) {
    out.finish = 'eos';
    return true;
  }
  if (rules.onToken?.(token) === 'stop') {
    out.finish = 'stop';
    return true;
  }
  if (out.tokens.length >= rules.maxNewTokens) {
    out.finish = 'length';
    return true;
  }
  return false;
}

/**
 * Send one request to every rank of every member replica, wait for all of
 * them (each within the cluster's step budget, host/deadline.ts), account
 * the step; results per member, in rank order.
 */
export async function stepLane(host: LoopHost, members: Replica[], req: (member: number) => RankRequest<StepKind>, shape: StepShape): Promise<StepResult[][]> {
  const tokens = shape.B * shape.S;
  const t0 = performance.now();
  const bound = host.cluster.budget.boundMs(tokens);
  const results: StepResult[][] = await Promise.all(members.map((m, k) => Promise.all(m.ranks.map((r) => host.cluster.request(r, req(k), bound)))));
  host.cluster.budget.observe(tokens, performance.now() - t0);
  // the samplers' ids must be real token ids, one per sequence: a rank that answers otherwise is broken
  const V = host.config.vocabSize;
  members.forEach((m, k) => {
    const r = results[k][m.ranks.indexOf(m.sampler)];
    const outside = r.tokens?.find((t) => t >= V);
    const bad = !r.tokens ? 'no token ids' : r.tokens.length < shape.B ? `${r.tokens.length} token ids for ${shape.B} sequences` : outside !== undefined ? `token id ${outside} outside the vocabulary of ${V}` : null;
    if (bad) {
      const err = new ClusterError(`rank ${m.sampler} (the sampler) sent a malformed step result: ${bad}`, m.sampler);
      host.cluster.abort(err);
      throw err;
    }
  });
  host.meter.account(members.flatMap((m) => m.ranks), results.flat(), shape);
  return results;
}

/**
 * Generate for the sequences `seqs[k]` (indices into `prompts`, all of one
 * length) of each member replica of a lane, stepping them together; null
 * when the lane has no sequence. `micro`: the pipeline micro-batches of the
 * lane's steps (default the spec's; 1 when the caller runs several lanes of
 * one replica at once, so their steps overlap in the pipeline).
 */
export async function runLane(host: LoopHost, members: Replica[], seqs: number[][], prompts: number[][], o: GenerateOptions, t0: number, micro?: number): Promise<{ outputs: SeqOutput[][]; tokenMs: number[]; prefillMs: number } | null> {
  const B = Math.max(...seqs.map((s) => s.length));
  if (B === 0) return null;
  const S0 = prompts[seqs.find((s) => s.length > 0)![0]].length;
  const batch = host.nextBatchId();
  const params = o.sampling ?? { greedy: true };
  const eachRank = (f: (rank: number, k: number) => Promise<unknown>) => Promise.all(members.map((m, k) => Promise.all(m.ranks.map((r) => f(r, k)))));
  await eachRank((r, k) => {
    const mine = seqs[k];
    const sampling: SeqSampling[] = Array.from({ length: B }, (_, i) => ({ params, seed: i < mine.length ? ((o.seed ?? 0) + mine[i] * 7919) >>> 0 : 0 }));
    const ghosts = B - mine.length;
    return host.cluster.request(r, { type: 'open', batch, size: B, sampling, ...(ghosts > 0 ? { ghosts } : {}), ...(micro !== undefined ? { micro } : {}) });
  });
  const outputs: SeqOutput[][] = seqs.map((s) => s.map(() => ({ tokens: [], finish: 'length', logits: [] })));
  const done = seqs.map((s) => new Array<boolean>(s.length).fill(false));
  const inputs = seqs.map((mine) => {
    const ids = new Int32Array(B * S0); // ghost rows: token 0
    mine.forEach((seq, i) => ids.set(prompts[seq], i * S0));
    return ids;
  });
  // what each ring member's K/V cache holds, for the closed-form SP traffic
  const sp = host.roles[members[0].ranks[0]].plan.sp;
  const spHist = sp && sp.size > 1 && sp.impl !== 'megatron' ? new SpHistory(sp.size, sp.ulysses, sp.chunking) : undefined;
  const eos = eosSet(host.config, o);
  // how each sequence ends, built once (onToken carries the sequence's index in the prompts)
  const rules: FinishRules[][] = seqs.map((mine) => mine.map((seq) => ({ eos, maxNewTokens: o.maxNewTokens, onToken: o.onToken && ((t: number) => o.onToken!(seq, t)) })));
  const V = host.config.vocabSize;
  const tokenMs: number[] = [];
  let prefillMs = 0;
  let len = S0;
  const realOf = new Map(members.flatMap((m, k) => m.ranks.map((r) => [r, seqs[k].length] as const)));
  try {
    for (let step = 0; step < o.maxNewTokens && !done.every((d) => d.every(Boolean)); step++) {
      const req = (k: number): RankRequest<'step'> => ({ type: 'step', batch, S: len, tokens: inputs[k], wantLogits: !!o.wantLogits, trace: host.meter.tracing });
      const results = await stepLane(host, members, req, { B, S: len, real: (rank) => realOf.get(rank)!, sp: spHist, micro });
      spHist?.advance(len);
      const now = performance.now() - t0;
      if (step === 0) prefillMs = now;
      tokenMs.push(now);
      members.forEach((m, k) => {
        const r = results[k][m.ranks.indexOf(m.sampler)];
        const next = r.tokens!;
        for (let i = 0; i < seqs[k].length; i++) {
          if (done[k][i]) continue;
          if (r.logits) outputs[k][i].logits.push(r.logits.slice(i * V, (i + 1) * V));
          done[k][i] = takeToken(outputs[k][i], next[i], rules[k][i]);
        }
        inputs[k] = Int32Array.from(next);
      });
      len = 1;
    }
  } finally {
    if (!host.cluster.failed) await eachRank((r) => host.cluster.request(r, { type: 'close', batch })).catch(() => undefined);
  }
  return { outputs, tokenMs, prefillMs };
}
