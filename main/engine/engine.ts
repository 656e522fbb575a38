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
import { parseSpec, formatSpec } from './parallel/spec';
import type { ParallelSpec } from './parallel/spec';
import { validateSpecForModel } from './parallel/validate';
import { buildMesh } from './parallel/mesh';
import type { Mesh } from './parallel/mesh';
import { rankRoles } from './parallel/plan';
import type { RankRole } from './parallel/plan';
import { Cluster } from './cluster/cluster';
import type { DeviceKind } from './runtime/ort';
import type { RankInit, SeqSampling, StepResult } from './worker/protocol';
import type { SamplingParams } from '../lab/contract';
import { ModelError } from './model/errors';
import { WeightStore, validateWeights } from './model/weights';

/** Axes this build executes; the spec parser accepts the full grammar and refuses the rest clearly. */
export const SUPPORTED_AXES = ['dp', 'pp', 'tp'] as const;
/** Parallel plans that run today (the multi-process plans land with the communicator). */
const RUNNABLE_WORLD = 1;

export interface EngineOptions {
  model: string;
  parallel: string;
  device?: DeviceKind;
  threadsPerRank?: number;
  /** longest prompt + output this engine must hold */
  maxSeq?: number;
  cut?: RankInit['cut'];
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
  steps: StepResult[];
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
  ) {}

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
    const { notes } = validateSpecForModel(spec, config, { supported: [...SUPPORTED_AXES], modelName: id });
    if (spec.world > RUNNABLE_WORLD) {
      throw new Error(`'${formatSpec(spec)}' needs ${spec.world} ranks; this build runs 'single' only — the multi-process plans (dp, pp, tp) land with the communicator`);
    }
    const mesh = buildMesh(spec);
    const roles = rankRoles(mesh, config);
    const cores = os.availableParallelism();
    const threads = o.threadsPerRank ?? Math.max(1, Math.floor(cores / spec.world));
    const device = o.device ?? 'cpu';
    const inits: RankInit[] = roles.map((r) => ({
      rank: r.rank,
      world: spec.world,
      modelDir: dir,
      plan: r.plan,
      device,
      threads,
      spin: spec.world * threads <= cores,
      maxSeq: o.maxSeq ?? Math.min(config.maxPositions, 4096),
      cut: o.cut ?? 'collectives',
      sampler: r.sampler,
    }));
    o.onProgress?.(`starting ${spec.world} rank(s)`);
    const cluster = await Cluster.start(inits);
    return new Engine(id, dir, config, tokenizer, spec, mesh, roles, cluster, device, threads, performance.now() - t0, notes);
  }

  /** The rank that samples for replica 0. */
  private get samplerRank(): number {
    return this.roles.find((r) => r.sampler && r.replica === 0)!.rank;
  }

  /**
   * Generate for a batch of prompts of equal length (one replica). Greedy,
   * or sampled with per-sequence seeds derived from `seed`.
   */
  async generate(prompts: number[][], o: GenerateOptions): Promise<{ outputs: SeqOutput[]; timeline: GenerateTimeline }> {
    const B = prompts.length;
    const S = prompts[0].length;
    if (S === 0) throw new ModelError('token-out-of-range', 'the prompt is empty; give at least one token');
    if (prompts.some((p) => p.length !== S)) throw new Error('all prompts of one batch must have the same length');
    for (const p of prompts) {
      for (const t of p) {
        if (!Number.isInteger(t) || t < 0 || t >= this.config.vocabSize) {
          throw new ModelError('token-out-of-range', `token id ${t} is out of range for this model's vocabulary of ${this.config.vocabSize} (valid: 0..${this.config.vocabSize - 1})`);
        }
      }
    }
    const eos = new Set(o.ignoreEos ? [] : (o.eosIds ?? this.config.eosTokenIds));
    const batch = `b${++batchCounter}`;
    const sampling: SeqSampling[] = prompts.map((_, i) => ({ params: o.sampling ?? { greedy: true }, seed: ((o.seed ?? 0) + i * 7919) >>> 0 }));
    await this.cluster.broadcast({ type: 'open', batch, size: B, sampling });
    const outputs: SeqOutput[] = prompts.map(() => ({ tokens: [], finish: 'length', logits: [] }));
    const done = new Array<boolean>(B).fill(false);
    const tokenMs: number[] = [];
    const steps: StepResult[] = [];
    const t0 = performance.now();
    let prefillMs = 0;
    let input = Int32Array.from(prompts.flat());
    let len = S;
    try {
      for (let step = 0; step < o.maxNewTokens && !done.every(Boolean); step++) {
        const results = (await this.cluster.broadcast({ type: 'step', batch, S: len, tokens: input, wantLogits: !!o.wantLogits }, stepTimeoutMs(B * len))) as StepResult[];
        const r = results[this.samplerRank];
        steps.push(r);
        const now = performance.now() - t0;
        if (step === 0) prefillMs = now;
        tokenMs.push(now);
        const next = r.tokens!;
        const V = r.logits ? r.logits.length / B : 0;
        for (let i = 0; i < B; i++) {
          if (done[i]) continue;
          const out = outputs[i];
          out.tokens.push(next[i]);
          if (r.logits) out.logits.push(r.logits.slice(i * V, (i + 1) * V));
          if (eos.has(next[i])) {
            out.finish = 'eos';
            done[i] = true;
          } else if (o.onToken?.(i, next[i]) === 'stop') {
            out.finish = 'stop';
            done[i] = true;
          }
        }
        input = Int32Array.from(next);
        len = 1;
      }
    } finally {
      if (!this.cluster.failed) await this.cluster.broadcast({ type: 'close', batch }).catch(() => undefined);
    }
    return { outputs, timeline: { tokenMs, prefillMs, totalMs: performance.now() - t0, steps } };
  }

  async close(): Promise<void> {
    await this.cluster.stop();
  }
}

/** Generous per-step timeout: a step is hung only if it is far slower than any CPU could be. */
function stepTimeoutMs(tokens: number): number {
  return 60_000 + tokens * 100;
}
