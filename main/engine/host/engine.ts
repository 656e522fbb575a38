/**
 * The host side of a running model: the resolved model, its tokenizer and a
 * Cluster of ranks executing a parallel plan. `start` turns (model, spec)
 * into rank processes (host/launch.ts), `generate` routes a batch of prompts
 * to the data-parallel replicas and steps them (host/step.ts), the Meter
 * keeps what the ranks measured, `close` stops everything.
 */
import os from 'node:os';
import type { DeviceKind } from '../types';
import { resolveModel } from '../model/catalog';
import { loadTokenizer } from '../model/tokenizer';
import type { TextTokenizer } from '../model/tokenizer';
import type { ModelConfig } from '../model/types';
import { ModelError } from '../model/errors';
import { WeightStore, validateWeights } from '../model/weights';
import { parseSpec } from '../parallel/spec';
import type { ParallelSpec } from '../parallel/spec';
import { SUPPORTED_AXES, SUPPORTED_SP_IMPL, validateSpecForModel } from '../parallel/validate';
import { buildMesh } from '../parallel/mesh';
import type { Mesh } from '../parallel/mesh';
import { rankRoles } from '../parallel/plan';
import type { RankRole } from '../parallel/plan';
import { route } from '../parallel/dp/route';
import type { Routing } from '../parallel/dp/route';
import { lockstepReplicaSets } from '../parallel/ep/lockstep';
import { splitEven } from '../parallel/split';
import { prepareWorld, destroyWorld } from '../comm/world';
import type { WorldSetup, Transport } from '../comm/world';
import type { LedgerSummary } from '../comm/ledger';
import { assertProviderInstalled } from '../runtime/providers';
import type { RankInit } from '../rank/protocol';
import { Cluster } from './cluster';
import { Meter } from './meter';
import { checkEngineBounds, defaultThreads, rankInits } from './launch';
import { gpuCountFor, parseDeviceList, placeRanks } from './placement';
import type { Placement } from './placement';
import { runLane } from './step';
import type { GenerateOptions, LoopHost, Replica, SeqOutput } from './step';

export type { GenerateOptions, SeqOutput } from './step';
export type { RankTime } from './meter';

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
  /**
   * The most one step, or one collective inside it, may take before the run
   * counts as hung (ms; `--timeout`). Default: scaled from the steps seen
   * (host/deadline.ts), 60 s for a collective's wait on a peer.
   */
  timeoutMs?: number;
  /** ms of heartbeat silence after which a rank counts as stopped (default 10 s) */
  heartbeatTimeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface GenerateTimeline {
  /** ms from the start of the request to each generated token */
  tokenMs: number[];
  prefillMs: number;
  totalMs: number;
}

/** What start() resolved and launched. */
interface Started {
  modelId: string;
  modelDir: string;
  config: ModelConfig;
  tokenizer: TextTokenizer;
  spec: ParallelSpec;
  mesh: Mesh;
  roles: RankRole[];
  cluster: Cluster;
  device: DeviceKind;
  threadsPerRank: number;
  loadMs: number;
  notes: string[];
  placement: Placement;
  context: number;
  world: WorldSetup | null;
}

export class Engine implements LoopHost {
  readonly modelId: string;
  readonly modelDir: string;
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer;
  readonly spec: ParallelSpec;
  readonly mesh: Mesh;
  readonly roles: RankRole[];
  readonly cluster: Cluster;
  readonly device: DeviceKind;
  readonly threadsPerRank: number;
  readonly loadMs: number;
  readonly notes: string[];
  /** Which device id each rank uses and whether ranks share a GPU. */
  readonly placement: Placement;
  /** positions one sequence may fill: prompt + new tokens − 1 (the last token is never fed back) */
  readonly context: number;
  /** What the ranks measured since the last meter.reset(): times, expected comm, KV, spans, expert load. */
  readonly meter: Meter;
  /** DP routing policy, and the sequences in flight per replica it routes by. */
  routing: Routing = 'least-loaded';
  /**
   * PP overlap across steps (on by default): a replica's sequences run as
   * `micro` batches of their own, each stepped by its own loop, so while the
   * last stage finishes batch B's token the first stage already runs batch
   * A's next one (vLLM's virtual engines). Off: one batch per replica, cut
   * into micro-batches inside each step (GPipe within a step; the pipeline
   * drains at every token).
   */
  ppOverlap = true;
  private readonly active: number[];
  private readonly rrCounter = { next: 0 };
  private readonly world: WorldSetup | null;
  private batches = 0;

  private constructor(s: Started) {
    ({ modelId: this.modelId, modelDir: this.modelDir, config: this.config, tokenizer: this.tokenizer, spec: this.spec, mesh: this.mesh, roles: this.roles, cluster: this.cluster } = s);
    ({ device: this.device, threadsPerRank: this.threadsPerRank, loadMs: this.loadMs, notes: this.notes, placement: this.placement, context: this.context, world: this.world } = s);
    this.meter = new Meter(s.mesh, s.roles, s.config);
    this.active = new Array<number>(s.spec.dp).fill(0);
  }

  nextBatchId(): string {
    return `b${++this.batches}`;
  }

  /** Batches a replica keeps in flight at once for `seqs` sequences (> 1 only under PP with overlap on). */
  inFlight(seqs: number): number {
    return this.spec.pp > 1 && this.ppOverlap ? Math.max(1, Math.min(this.spec.micro, seqs)) : 1;
  }

  /** Ranks of each data-parallel replica, and the rank that samples for it. */
  get replicas(): Replica[] {
    return Array.from({ length: this.spec.dp }, (_, d) => ({
      ranks: this.roles.filter((r) => r.replica === d).map((r) => r.rank),
      sampler: this.roles.find((r) => r.sampler && r.replica === d)!.rank,
    }));
  }

  /** Per-rank comm ledgers (null for ranks without a data plane); `reset` starts a new measurement. */
  ledgers(reset = false): Promise<(LedgerSummary | null)[]> {
    return this.cluster.broadcast({ type: 'ledger', reset });
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
    checkEngineBounds(o, os.availableParallelism());
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
    const threads = o.threadsPerRank ?? defaultThreads(cores, spec.world);
    const device = o.device ?? 'cpu';
    // Fail before spawning when the provider is not installed here (remote workers may have their own).
    if (!o.remote) assertProviderInstalled(device);
    const placement = placeRanks(spec.world, device, { gpuCount: gpuCountFor(device), explicit: o.devices ?? (device === 'cpu' ? undefined : parseDeviceList(process.env.PARALAB_DEVICES)) });
    if (o.remote && (o.remote.count < 1 || o.remote.count > spec.world)) throw new Error(`--workers ${o.remote.count} must be between 1 and the ${spec.world} ranks of '${o.parallel}'`);
    // Ranks on other machines reach each other over TCP, at the address the host listens on.
    const listenHost = o.remote ? o.remote.listen.slice(0, o.remote.listen.lastIndexOf(':')) : undefined;
    const groups = mesh.commGroups();
    const world = groups.length > 0 ? await prepareWorld({ world: spec.world, transport: o.remote ? 'tcp' : (o.transport ?? 'auto'), groups, host: listenHost, timeoutMs: o.timeoutMs }) : null;
    const inits = rankInits(mesh, roles, placement, world, {
      modelDir: dir,
      modelId: id,
      device,
      threads,
      cores,
      maxSeq: context,
      cut: o.cut ?? 'collectives',
      spin: process.env.PARALAB_ORT_SPIN === '1',
      remote: !!o.remote,
    });
    o.onProgress?.(`starting ${spec.world} rank(s) (${mesh.describe()})`);
    let cluster: Cluster;
    try {
      // the host's bound is a little longer than the collectives': a rank waiting on a stuck peer says which one
      cluster = await Cluster.start(inits, {
        remote: o.remote,
        stepTimeoutMs: o.timeoutMs !== undefined ? o.timeoutMs + 2000 : undefined,
        heartbeatTimeoutMs: o.heartbeatTimeoutMs,
        initTimeoutMs: o.timeoutMs !== undefined ? Math.max(300_000, o.timeoutMs) : undefined,
      });
    } catch (e) {
      if (world) destroyWorld(world);
      throw e;
    }
    return new Engine({
      modelId: id, modelDir: dir, config, tokenizer, spec, mesh, roles, cluster, device, threadsPerRank: threads,
      loadMs: performance.now() - t0, notes: [...notes, ...placement.notes], placement, context, world,
    });
  }

  /** How the ranks talk: the transport the data plane chose (null: no rank talks to another, e.g. single or pure dp). */
  get transport(): WorldSetup['transport'] | null {
    return this.world?.transport ?? null;
  }

  /**
   * Generate for a batch of prompts of equal length. Under DP the sequences
   * are routed to the replicas, which run concurrently and never talk to
   * each other (except the replicas of an EP lockstep set, which step
   * together); outputs come back in prompt order.
   */
  async generate(prompts: number[][], o: GenerateOptions): Promise<{ outputs: SeqOutput[]; timeline: GenerateTimeline }> {
    const S = prompts[0]?.length ?? 0;
    if (S === 0) throw new ModelError('token-out-of-range', 'the prompt is empty; give at least one token');
    if (prompts.some((p) => p.length !== S)) throw new Error('all prompts of one batch must have the same length');
    this.checkFits(S, o.maxNewTokens);
    for (const p of prompts) this.checkTokens(p);
    const replicas = this.replicas;
    const assigned = replicas.map(() => [] as number[]);
    route(this.routing, prompts.length, this.active, this.rrCounter).forEach((d, i) => assigned[d].push(i));
    const t0 = performance.now();
    // EP across replicas: they share collectives, so they step in lockstep
    const lanes = this.spec.ep > 1 && this.spec.dp > 1 ? lockstepReplicaSets(this.mesh) : replicas.map((_, d) => [d]);
    // PP overlap: each lane's sequences as `V` contiguous groups, one batch and one loop each (ppOverlap)
    const V = this.inFlight(Math.max(...assigned.map((a) => a.length)));
    const jobs = lanes.flatMap((set) => Array.from({ length: V }, (_, g) => ({ set, seqs: set.map((d) => assigned[d].slice(...splitEven(assigned[d].length, V, g))) })));
    const parts = await Promise.all(
      jobs.map(({ set, seqs }) =>
        runLane(this, set.map((d) => replicas[d]), seqs, prompts, o, t0, V > 1 ? 1 : undefined).finally(() => set.forEach((d, j) => (this.active[d] -= seqs[j].length))),
      ),
    );
    const outputs = new Array<SeqOutput>(prompts.length);
    const timeline: GenerateTimeline = { tokenMs: [], prefillMs: 0, totalMs: 0 };
    // the token times of replica 0's first batch (of the first batch that ran when replica 0 had nothing)
    const ofReplica0 = (k: number) => parts[k] !== null && jobs[k].set.includes(0) && jobs[k].seqs[jobs[k].set.indexOf(0)].length > 0;
    const timesFrom = [...parts.keys()].find(ofReplica0) ?? parts.findIndex((p) => p !== null);
    parts.forEach((p, k) => {
      if (!p) return;
      const { set, seqs } = jobs[k];
      set.forEach((_, j) => seqs[j].forEach((seq, i) => (outputs[seq] = p.outputs[j][i])));
      if (k === timesFrom) timeline.tokenMs = p.tokenMs;
      timeline.prefillMs = Math.max(timeline.prefillMs, p.prefillMs);
    });
    timeline.totalMs = performance.now() - t0;
    return { outputs, timeline };
  }

  /** Refuse token ids outside the vocabulary, before any rank works. */
  checkTokens(ids: number[]): void {
    const V = this.config.vocabSize;
    for (const t of ids) {
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new ModelError('token-out-of-range', `token id ${t} is out of range for this model's vocabulary of ${V} (valid: 0..${V - 1})`);
    }
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

  async close(): Promise<void> {
    await this.cluster.stop();
    if (this.world) destroyWorld(this.world);
  }
}
