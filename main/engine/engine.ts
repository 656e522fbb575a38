/**
 * The host side of a running model: the resolved model, its tokenizer and a
 * Cluster of ranks executing a parallel plan. `generate` drives the ranks one
 * step at a time (prefill, then one token per step) and times each token.
 */
import os from 'node:os';
import { resolveModel } from './model/catalog';
import { loadTokenizer } from './model/tokenizer';
import type { TextTokenizer } from './model/tokenizer';
import type { ModelConfig } from './model/types';
import { parseSpec } from './parallel/spec';
import type { ParallelSpec } from './parallel/spec';
import { validateSpecForModel } from './parallel/validate';
import { buildMesh } from './parallel/mesh';
import type { Mesh } from './parallel/mesh';
import { rankRoles } from './parallel/plan';
import { stepComm } from './parallel/expected';
import { SpHistory } from './parallel/sequence';
import { route } from './parallel/route';
import { moeStepComm } from './parallel/expected';
import { addLoad, emptyLoad, lockstepReplicaSets, microSplit } from './parallel/expert';
import type { ExpertLoad } from './parallel/expert';
import type { Routing } from './parallel/route';
import type { Expected } from './parallel/expected';
import type { RankRole } from './parallel/plan';
import { Cluster } from './cluster/cluster';
import { prepareWorld, destroyWorld } from './comm/world';
import type { WorldSetup, Transport } from './comm/world';
import type { LedgerSummary } from './comm/ledger';
import type { DeviceKind } from './runtime/ort';
import { placeRanks, gpuCountFor, assertProviderInstalled, parseDeviceList } from './runtime/devices';
import type { Placement } from './runtime/devices';
import type { RankInit, RankSpan, SeqSampling, StepResult } from './worker/protocol';
import type { SamplingParams } from '../lab/contract';
import { ModelError } from './model/errors';
import { WeightStore, validateWeights } from './model/weights';

/** Axes this build executes; the spec parser accepts the full grammar and refuses the rest clearly. */
export const SUPPORTED_AXES = ['dp', 'pp', 'tp', 'sp', 'ep'] as const;
/** sp_impl values this build executes. */
export const SUPPORTED_SP_IMPL = ['ulysses', 'ring', 'usp', 'megatron'] as const;

/**
 * Context an engine is built for unless told otherwise (capped by the model's):
 * every attention segment carries RoPE tables of this many rows, so a 32k
 * default would cost hundreds of MB per rank for prompts that are rarely that long.
 */
export const DEFAULT_CONTEXT = 4096;

export interface EngineOptions {
  model: string;
  parallel: string;
  device?: DeviceKind;
  /** GPU ids the ranks go on, in rank order, repeating (default: PARALAB_DEVICES, else round-robin over the GPUs found) */
  devices?: number[];
  threadsPerRank?: number;
  /** longest prompt + output this engine must hold */
  maxSeq?: number;
  cut?: RankInit['cut'];
  /** data-plane transport between ranks (default: shared memory when the addon is built, else Unix sockets) */
  transport?: Transport;
  /** the last `count` ranks join over TCP from `lab worker --join HOST:PORT` (other machines) */
  remote?: { listen: string; count: number; onListening?: (address: string) => void };
  onProgress?: (message: string) => void;
}

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

export interface GenerateTimeline {
  /** ms from the start of the request to each generated token */
  tokenMs: number[];
  prefillMs: number;
  totalMs: number;
}

/** Where a rank's time went, summed over the steps since the last reset. */
export interface RankTime {
  steps: number;
  computeMs: number;
  commMs: number;
  /** blocked waiting for the previous pipeline stage */
  bubbleMs: number;
}

let batchCounter = 0;

export class Engine {
  private constructor(
    readonly modelId: string,
    readonly modelDir: string,
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    readonly spec: ParallelSpec,
    readonly mesh: Mesh,
    readonly roles: RankRole[],
    readonly cluster: Cluster,
    readonly device: DeviceKind,
    readonly threadsPerRank: number,
    readonly loadMs: number,
    readonly notes: string[],
    private readonly world: WorldSetup | null,
  ) {
    this.resetTimes();
    this.active.push(...new Array<number>(spec.dp).fill(0));
  }

  /** DP routing policy, and the sequences in flight per replica it routes by. */
  routing: Routing = 'least-loaded';
  private readonly active: number[] = [];
  private readonly rrCounter = { next: 0 };

  /** Per global rank: compute / comm / bubble time since the last resetTimes(). */
  readonly rankTimes: RankTime[] = [];
  /** Which device id each rank uses and whether ranks share a GPU (set by start). */
  placement: Placement = placeRanks(0, 'cpu');
  /** positions one sequence may fill: prompt + new tokens − 1 (the last token is never fed back) */
  context = 0;
  /** Per global rank: the closed-form traffic of the steps since the last resetTimes(). */
  readonly expectedComm: Expected[] = [];

  /** Ask the ranks for the spans of every step (trace.json); drain them with drainSpans(). */
  tracing = false;
  private spans: RankSpan[][] = [];
  private lastKvBytes: number[] = [];

  /** Per global rank, the spans recorded since the last drain (empty when tracing is off). */
  drainSpans(): RankSpan[][] {
    const out = Array.from({ length: this.spec.world }, (_, r) => this.spans[r] ?? []);
    this.spans = [];
    return out;
  }

  /** Account one rank's step (from generate, or a scheduler outside it such as serving.ts): its times, KV bytes and spans. */
  recordRankStep(rank: number, res: StepResult): void {
    if (res.spans) (this.spans[rank] ??= []).push(...res.spans);
    this.lastKvBytes[rank] = res.kvBytes;
    const t = this.rankTimes[rank];
    t.steps++;
    t.computeMs += res.computeMs;
    t.commMs += res.commMs;
    t.bubbleMs += res.bubbleMs;
  }

  /** Per global rank, the KV cache bytes it held after its last step. */
  kvBytes(): number[] {
    return Array.from({ length: this.spec.world }, (_, r) => this.lastKvBytes[r] ?? 0);
  }

  resetTimes(): void {
    this.rankTimes.length = 0;
    this.expectedComm.length = 0;
    this.moeLoad = null;
    for (let r = 0; r < this.spec.world; r++) {
      this.rankTimes.push({ steps: 0, computeMs: 0, commMs: 0, bubbleMs: 0 });
      this.expectedComm.push({});
    }
  }

  /** Ranks of each data-parallel replica, and the rank that samples for it. */
  get replicas(): { ranks: number[]; sampler: number }[] {
    return Array.from({ length: this.spec.dp }, (_, d) => ({
      ranks: this.roles.filter((r) => r.replica === d).map((r) => r.rank),
      sampler: this.roles.find((r) => r.sampler && r.replica === d)!.rank,
    }));
  }

  /** Per-rank comm ledgers (null for ranks without a data plane); `reset` starts a new measurement. */
  async ledgers(reset = false): Promise<(LedgerSummary | null)[]> {
    return (await this.cluster.broadcast({ type: 'ledger', reset })) as (LedgerSummary | null)[];
  }

  /** Resolve a model and load its tokenizer without starting any rank. */
  static async prepareModel(model: string, onProgress?: (m: string) => void) {
    const { id, dir, config } = await resolveModel(model, { onProgress: (d, t, m) => onProgress?.(`${m} (${d}/${t})`) });
    // Check the weight files against the config here, in the host, so a broken
    // folder is one clear message before any rank is spawned.
    const store = WeightStore.open(dir);
    try {
      validateWeights(store, config);
    } finally {
      store.close();
    }
    return { id, dir, config, tokenizer: await loadTokenizer(dir) };
  }

  static async start(o: EngineOptions): Promise<Engine> {
    const t0 = performance.now();
    const spec = parseSpec(o.parallel);
    o.onProgress?.(`resolving model ${o.model}`);
    const { id, dir, config, tokenizer } = await Engine.prepareModel(o.model, o.onProgress);
    const context = o.maxSeq ?? Math.min(config.maxPositions, DEFAULT_CONTEXT);
    if (!Number.isInteger(context) || context < 1) throw new Error(`maxSeq must be a positive integer, got ${o.maxSeq}`);
    if (context > config.maxPositions) {
      throw new ModelError('context-too-long', `${id}: this run needs a context of ${context} positions, but the model has ${config.maxPositions} (max_position_embeddings); use a shorter prompt or fewer new tokens`);
    }
    const { notes } = validateSpecForModel(spec, config, { supported: [...SUPPORTED_AXES], supportedSpImpl: [...SUPPORTED_SP_IMPL], modelName: id });
    const mesh = buildMesh(spec);
    const roles = rankRoles(mesh, config);
    const cores = os.availableParallelism();
    const threads = o.threadsPerRank ?? Math.max(1, Math.floor(cores / spec.world));
    const device = o.device ?? 'cpu';
    // Fail before spawning when the provider is not installed here (remote workers may have their own).
    if (!o.remote) assertProviderInstalled(device);
    const placement = placeRanks(spec.world, device, { gpuCount: gpuCountFor(device), explicit: o.devices ?? (device === 'cpu' ? undefined : parseDeviceList(process.env.PARALAB_DEVICES)) });
    const groups = [
      ...(spec.tp > 1 ? mesh.groups('tp').map((ranks) => ({ name: `tp${ranks[0]}`, ranks })) : []),
      ...(spec.pp > 1 ? mesh.groups('pp').map((ranks) => ({ name: `pp${ranks[0]}`, ranks })) : []),
      ...(spec.ep > 1 ? mesh.groups('ep').map((ranks) => ({ name: `ep${ranks[0]}`, ranks })) : []),
      ...(spec.sp > 1 ? mesh.groups('sp').map((ranks) => ({ name: `sp${ranks[0]}`, ranks })) : []),
      ...(spec.sp > 1 && spec.ulysses > 1 && spec.ulysses < spec.sp ? mesh.groups('ulysses').map((ranks) => ({ name: `uly${ranks[0]}`, ranks })) : []),
      ...(spec.sp > 1 && spec.ulysses > 1 && spec.ulysses < spec.sp ? mesh.groups('ring').map((ranks) => ({ name: `ring${ranks[0]}`, ranks })) : []),
    ];
    if (o.remote && (o.remote.count < 1 || o.remote.count > spec.world)) throw new Error(`--workers ${o.remote.count} must be between 1 and the ${spec.world} ranks of '${o.parallel}'`);
    // Ranks on other machines reach each other over TCP, at the address the host listens on.
    const listenHost = o.remote ? o.remote.listen.slice(0, o.remote.listen.lastIndexOf(':')) : undefined;
    const world = groups.length > 0 ? await prepareWorld({ world: spec.world, transport: o.remote ? 'tcp' : (o.transport ?? 'auto'), groups, host: listenHost }) : null;
    const inits: RankInit[] = roles.map((r) => ({
      rank: r.rank,
      world: spec.world,
      modelDir: dir,
      modelId: id,
      plan: r.plan,
      device,
      ...(placement.deviceIds[r.rank] !== null ? { deviceId: placement.deviceIds[r.rank]! } : {}),
      threads,
      // Spinning intra-op threads looked free but measured 10× slower decode
      // with per-sublayer sessions: every session owns a thread pool, and idle
      // pools spinning on 2 cores starve the busy one (docs/PERFORMANCE.md).
      spin: process.env.PARALAB_ORT_SPIN === '1',
      pin: !o.remote && spec.world > 1 && spec.world * threads <= cores,
      maxSeq: context,
      cut: o.cut ?? 'collectives',
      sampler: r.sampler,
      micro: spec.pp > 1 ? spec.micro : 1,
      dataPlane: world,
      links: linksOf(mesh, r.rank),
    }));
    o.onProgress?.(`starting ${spec.world} rank(s) (${mesh.describe()})`);
    let cluster: Cluster;
    try {
      cluster = await Cluster.start(inits, { remote: o.remote });
    } catch (e) {
      if (world) destroyWorld(world);
      throw e;
    }
    const engine = new Engine(id, dir, config, tokenizer, spec, mesh, roles, cluster, device, threads, performance.now() - t0, [...notes, ...placement.notes], world);
    engine.placement = placement;
    engine.context = context;
    return engine;
  }

  /**
   * Generate for a batch of prompts of equal length. Under DP the sequences
   * are dealt round-robin to the replicas, which run concurrently and never
   * talk to each other; outputs come back in prompt order.
   */
  async generate(prompts: number[][], o: GenerateOptions): Promise<{ outputs: SeqOutput[]; timeline: GenerateTimeline }> {
    const S = prompts[0]?.length ?? 0;
    if (S === 0) throw new ModelError('token-out-of-range', 'the prompt is empty; give at least one token');
    if (prompts.some((p) => p.length !== S)) throw new Error('all prompts of one batch must have the same length');
    this.checkFits(S, o.maxNewTokens);
    for (const p of prompts) {
      for (const t of p) {
        if (!Number.isInteger(t) || t < 0 || t >= this.config.vocabSize) {
          throw new ModelError('token-out-of-range', `token id ${t} is out of range for this model's vocabulary of ${this.config.vocabSize} (valid: 0..${this.config.vocabSize - 1})`);
        }
      }
    }
    const replicas = this.replicas;
    const assigned = replicas.map(() => [] as number[]);
    const where = route(this.routing, prompts.length, this.active, this.rrCounter);
    where.forEach((d, i) => assigned[d].push(i));
    const t0 = performance.now();
    // EP across replicas: they share collectives, so they step in lockstep
    if (this.spec.ep > 1 && this.spec.dp > 1) return this.generateLockstep(assigned, prompts, o, t0);
    const parts = await Promise.all(
      replicas.map((rep, d) =>
        assigned[d].length === 0 ? null : this.generateOn(rep, assigned[d], prompts, o, t0).finally(() => (this.active[d] -= assigned[d].length)),
      ),
    );
    const outputs = new Array<SeqOutput>(prompts.length);
    const timeline: GenerateTimeline = { tokenMs: [], prefillMs: 0, totalMs: performance.now() - t0 };
    parts.forEach((p, d) => {
      if (!p) return;
      assigned[d].forEach((seq, j) => (outputs[seq] = p.outputs[j]));
      if (d === 0) timeline.tokenMs = p.tokenMs;
      timeline.prefillMs = Math.max(timeline.prefillMs, p.prefillMs);
    });
    return { outputs, timeline };
  }

  /**
   * Refuse, before any rank works, a prompt that cannot be generated to its end
   * in this engine's context (otherwise a rank fails mid-generation).
   */
  checkFits(promptLen: number, maxNewTokens: number): void {
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
    const need = promptLen + maxNewTokens - 1;
    if (need <= this.context) return;
    const where =
      this.context < this.config.maxPositions
        ? `this engine was started for ${this.context} positions (the model allows ${this.config.maxPositions})`
        : `the model's context is ${this.context} positions (max_position_embeddings)`;
    const left = this.context - promptLen + 1;
    throw new ModelError(
      'context-too-long',
      left < 1
        ? `a prompt of ${promptLen} tokens does not fit: ${where}; shorten the prompt`
        : `a prompt of ${promptLen} tokens with ${maxNewTokens} new tokens needs ${need} positions, but ${where}; use at most ${left} new tokens or a shorter prompt`,
    );
  }

  /** One replica's step loop over its share of the sequences. */
  private async generateOn(rep: { ranks: number[]; sampler: number }, seqs: number[], prompts: number[][], o: GenerateOptions, t0: number) {
    const B = seqs.length;
    const eos = new Set(o.ignoreEos ? [] : (o.eosIds ?? this.config.eosTokenIds));
    const batch = `b${++batchCounter}`;
    const sampling: SeqSampling[] = seqs.map((i) => ({ params: o.sampling ?? { greedy: true }, seed: ((o.seed ?? 0) + i * 7919) >>> 0 }));
    const all = (req: Parameters<Cluster['request']>[1], timeout?: number) => Promise.all(rep.ranks.map((r) => this.cluster.request(r, req, timeout)));
    await all({ type: 'open', batch, size: B, sampling });
    const outputs: SeqOutput[] = seqs.map(() => ({ tokens: [], finish: 'length', logits: [] }));
    const done = new Array<boolean>(B).fill(false);
    const tokenMs: number[] = [];
    let prefillMs = 0;
    let input = Int32Array.from(seqs.flatMap((i) => prompts[i]));
    // what each ring member's K/V cache holds, for the closed-form SP traffic
    const sp = this.roles[rep.ranks[0]].plan.sp;
    const spHist = sp && sp.size > 1 && sp.impl !== 'megatron' ? new SpHistory(sp.size, sp.ulysses, sp.chunking) : null;
    let len = prompts[0].length;
    try {
      for (let step = 0; step < o.maxNewTokens && !done.every(Boolean); step++) {
        const results = (await all({ type: 'step', batch, S: len, tokens: input, wantLogits: !!o.wantLogits, trace: this.tracing }, stepTimeoutMs(B * len))) as StepResult[];
        const r = results[rep.ranks.indexOf(rep.sampler)];
        results.forEach((res, j) => {
          const rank = rep.ranks[j];
          stepComm(this.expectedComm[rank], this.roles[rank], this.mesh.place(rank), this.config, B, len, this.spec.pp > 1 ? this.spec.micro : 1, spHist ?? undefined);
          this.recordRankStep(rank, res);
        });
        spHist?.advance(len);
        this.accountMoe(rep.ranks, results, () => ({ seqs: B, real: B }), len);
        const now = performance.now() - t0;
        if (step === 0) prefillMs = now;
        tokenMs.push(now);
        const next = r.tokens!;
        const V = this.config.vocabSize;
        for (let i = 0; i < B; i++) {
          if (done[i]) continue;
          const out = outputs[i];
          out.tokens.push(next[i]);
          if (r.logits) out.logits.push(r.logits.slice(i * V, (i + 1) * V));
          if (eos.has(next[i])) {
            out.finish = 'eos';
            done[i] = true;
          } else if (o.onToken?.(seqs[i], next[i]) === 'stop') {
            out.finish = 'stop';
            done[i] = true;
          }
        }
        input = Int32Array.from(next);
        len = 1;
      }
    } finally {
      if (!this.cluster.failed) await all({ type: 'close', batch }).catch(() => undefined);
    }
    return { outputs, tokenMs, prefillMs };
  }

  /**
   * Expert load since resetTimes(): tokens routed per layer × expert, summed
   * over ranks, per rank, and max ÷ mean per layer. null for a dense model.
   */
  expertLoad(): ExpertLoad | null {
    const moe = this.config.moe;
    if (!moe) return null;
    return structuredClone(this.moeLoad ?? emptyLoad(this.spec.world, this.config.layers, moe.experts));
  }

  private moeLoad: ExpertLoad | null = null;

  /**
   * MoE bookkeeping of one step over `ranks`: the expert load the ranks
   * report, and under EP the closed-form dispatch / combine bytes from the
   * routed counts of each rank's ep peers (all of them are in `ranks`).
   */
  private accountMoe(ranks: number[], results: StepResult[], batchOf: (rank: number) => { seqs: number; real: number }, S: number): void {
    const moe = this.config.moe;
    if (!moe) return;
    const load = (this.moeLoad ??= emptyLoad(this.spec.world, this.config.layers, moe.experts));
    const routed = new Map<number, number[]>();
    results.forEach((res, j) => {
      if (!res.moe) return;
      addLoad(load, ranks[j], res.moe.routed);
      const total = new Array<number>(moe.experts).fill(0);
      for (const counts of Object.values(res.moe.routed)) counts.forEach((n, e) => (total[e] += n));
      routed.set(ranks[j], total);
    });
    if (this.spec.ep <= 1) return;
    const micro = this.spec.pp > 1 ? this.spec.micro : 1;
    for (const rank of ranks) {
      const place = this.mesh.place(rank);
      const peers = place.epGroup.map((r) => routed.get(r) ?? new Array<number>(moe.experts).fill(0));
      const b = batchOf(rank);
      moeStepComm(this.expectedComm[rank], this.roles[rank], this.config, microSplit(b.seqs, b.real, micro), S, peers);
    }
  }

  /**
   * DP attention + EP experts: replicas whose ranks share an ep group make
   * the same collectives every step, so they step together. Each set of such
   * replicas runs one batch padded to its largest share with ghost sequences
   * (never routed to experts; a replica with no sequences steps ghosts only),
   * until every real sequence of the set is done.
   */
  private async generateLockstep(assigned: number[][], prompts: number[][], o: GenerateOptions, t0: number): Promise<{ outputs: SeqOutput[]; timeline: GenerateTimeline }> {
    const outputs = new Array<SeqOutput>(prompts.length);
    const timeline: GenerateTimeline = { tokenMs: [], prefillMs: 0, totalMs: 0 };
    const sets = lockstepReplicaSets(this.mesh);
    const parts = await Promise.all(
      sets.map((set) => this.stepTogether(set, assigned, prompts, o, t0).finally(() => set.forEach((d) => (this.active[d] -= assigned[d].length)))),
    );
    parts.forEach((p, k) => {
      if (!p) return;
      sets[k].forEach((d, j) => assigned[d].forEach((seq, i) => (outputs[seq] = p.outputs[j][i])));
      if (sets[k].includes(0) || timeline.tokenMs.length === 0) timeline.tokenMs = p.tokenMs;
      timeline.prefillMs = Math.max(timeline.prefillMs, p.prefillMs);
    });
    timeline.totalMs = performance.now() - t0;
    return { outputs, timeline };
  }

  /** One lockstep set of replicas (see generateLockstep); null when none of them has a sequence. */
  private async stepTogether(set: number[], assigned: number[][], prompts: number[][], o: GenerateOptions, t0: number) {
    const reps = set.map((d) => ({ rep: this.replicas[d], seqs: assigned[d] }));
    const B = Math.max(...reps.map((r) => r.seqs.length));
    if (B === 0) return null;
    const S0 = prompts[0].length;
    const eos = new Set(o.ignoreEos ? [] : (o.eosIds ?? this.config.eosTokenIds));
    const batch = `b${++batchCounter}`;
    const params = o.sampling ?? { greedy: true };
    const eachRank = (f: (rank: number, k: number) => Promise<unknown>) => Promise.all(reps.map(({ rep }, k) => Promise.all(rep.ranks.map((r) => f(r, k)))));
    await eachRank((r, k) => {
      const seqs = reps[k].seqs;
      const sampling: SeqSampling[] = Array.from({ length: B }, (_, i) => ({ params, seed: i < seqs.length ? ((o.seed ?? 0) + seqs[i] * 7919) >>> 0 : 0 }));
      return this.cluster.request(r, { type: 'open', batch, size: B, sampling, ghosts: B - seqs.length });
    });
    const outputs: SeqOutput[][] = reps.map(({ seqs }) => seqs.map(() => ({ tokens: [], finish: 'length', logits: [] })));
    const done = reps.map(({ seqs }) => new Array<boolean>(seqs.length).fill(false));
    const inputs = reps.map(({ seqs }) => {
      const ids = new Int32Array(B * S0); // ghost rows: token 0
      seqs.forEach((seq, i) => ids.set(prompts[seq], i * S0));
      return ids;
    });
    const tokenMs: number[] = [];
    let prefillMs = 0;
    let len = S0;
    const micro = this.spec.pp > 1 ? this.spec.micro : 1;
    try {
      for (let step = 0; step < o.maxNewTokens && !done.every((d) => d.every(Boolean)); step++) {
        const results = (await eachRank((r, k) => this.cluster.request(r, { type: 'step', batch, S: len, tokens: inputs[k], wantLogits: !!o.wantLogits, trace: this.tracing }, stepTimeoutMs(B * len)))) as StepResult[][];
        const ranks = reps.flatMap(({ rep }) => rep.ranks);
        const real = new Map<number, number>();
        reps.forEach(({ rep, seqs }, k) =>
          rep.ranks.forEach((rank, j) => {
            real.set(rank, seqs.length);
            stepComm(this.expectedComm[rank], this.roles[rank], this.mesh.place(rank), this.config, B, len, micro);
            this.recordRankStep(rank, results[k][j]);
          }),
        );
        this.accountMoe(ranks, results.flat(), (rank) => ({ seqs: B, real: real.get(rank)! }), len);
        const now = performance.now() - t0;
        if (step === 0) prefillMs = now;
        tokenMs.push(now);
        const V = this.config.vocabSize;
        reps.forEach(({ rep, seqs }, k) => {
          const r = results[k][rep.ranks.indexOf(rep.sampler)];
          const next = r.tokens!;
          for (let i = 0; i < seqs.length; i++) {
            if (done[k][i]) continue;
            const out = outputs[k][i];
            out.tokens.push(next[i]);
            if (r.logits) out.logits.push(r.logits.slice(i * V, (i + 1) * V));
            if (eos.has(next[i])) {
              out.finish = 'eos';
              done[k][i] = true;
            } else if (o.onToken?.(seqs[i], next[i]) === 'stop') {
              out.finish = 'stop';
              done[k][i] = true;
            }
          }
          inputs[k] = Int32Array.from(next);
        });
        len = 1;
      }
    } finally {
      if (!this.cluster.failed) await eachRank((r) => this.cluster.request(r, { type: 'close', batch })).catch(() => undefined);
    }
    return { outputs, tokenMs, prefillMs };
  }

  async close(): Promise<void> {
    await this.cluster.stop();
    if (this.world) destroyWorld(this.world);
  }
}

/** Generous per-step timeout: a step is hung only if it is far slower than any CPU could be. */
function stepTimeoutMs(tokens: number): number {
  return 60_000 + tokens * 100;
}

/** A rank's groups in the world and its pipeline neighbours (as indices in its pp group). */
function linksOf(mesh: Mesh, rank: number): RankInit['links'] {
  const p = mesh.place(rank);
  const { tp, pp } = mesh.spec;
  const { sp, ulysses } = mesh.spec;
  // With sp_impl=ulysses the Ulysses group is the sp group; with ring, the ring is.
  const spName = sp > 1 ? `sp${p.spGroup[0]}` : null;
  return {
    tp: tp > 1 ? `tp${p.tpGroup[0]}` : null,
    pp: pp > 1 ? `pp${p.ppGroup[0]}` : null,
    ep: mesh.spec.ep > 1 ? `ep${p.epGroup[0]}` : null,
    sp: spName,
    ulysses: ulysses <= 1 ? null : ulysses === sp ? spName : `uly${p.ulyssesGroup[0]}`,
    ring: sp / ulysses <= 1 ? null : ulysses === 1 ? spName : `ring${p.ringGroup[0]}`,
    prev: pp > 1 && p.prev !== null ? p.coord.pp - 1 : null,
    next: pp > 1 && p.next !== null ? p.coord.pp + 1 : null,
  };
}
