/**
 * A rank process: owns one device, loads its own shard of the weights from
 * the model files, builds its segment graphs and runs them when the host
 * says so. Entry point of every child the Cluster forks (and of
 * `lab worker --join HOST:PORT` on another machine).
 *
 * State is one tagged union (exo's runner): idle → ready | failed.
 * Messages are served one at a time, in order: a rank is a sequential device.
 */
import os from 'node:os';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { loadModelConfig } from '../model/config';
import { WeightStore } from '../model/weights';
import { ropeCosSin } from '../model/rope';
import { isPresetId } from '../model/presets';
import { ensurePreset } from '../model/synth';
import { Executor } from '../runtime/executor';
import type { SegmentTiming } from '../runtime/stream';
import type { BlockEnv, LinkName, StepStats } from '../runtime/block';
import { joinWorld } from '../comm/world';
import type { World } from '../comm/world';
import { pinToCpus } from '../comm/shm-native';
import { Rng } from '../sample/rng';
import { sampleToken } from '../sample/sampler';
import { microBatches } from '../parallel/pp/pipeline';
import type { MicroBatches } from '../parallel/pp/pipeline';
import { markRealSequences } from '../parallel/ep/lockstep';
import { buildItems } from './blocks';
import { loadShardPieces } from './load-shard';
import { runStage } from './stage';
import type { StageLinks } from './stage';
import { ServingPools } from './serving-pool';
import { FramedSocket } from './channel';
import { toSpans } from './spans';
import { Faults } from './fault';
import { lifelineFd, startLifeline } from './lifeline';
import type { HostMsg, HostMsgType, RankInit, RankMsg, RankReady, RankReplies, SeqSampling, StepResult } from './protocol';

interface Batch {
  mb: MicroBatches;
  size: number;
  sampling: SeqSampling[];
  rngs: Rng[];
  /** prompt + generated ids per sequence, for the repetition penalty */
  history: number[][];
}

interface Ready {
  kind: 'ready';
  init: RankInit;
  exec: Executor;
  batches: Map<string, Batch>;
  pools: ServingPools;
  world: World | null;
  links: StageLinks;
  vocab: number;
}

type RankState = { kind: 'idle' } | Ready | { kind: 'failed'; reason: string };

/** Load this rank's shard, join the data plane, build its executor. */
async function load(init: RankInit, faults: Faults): Promise<{ state: Ready; ready: RankReady }> {
  const t0 = performance.now();
  // One rank per core when they fit: unpinned, two ranks sometimes share a
  // core and every collective waits on the one that is descheduled.
  if (init.pin) pinToCpus(Array.from({ length: init.threads }, (_, i) => (init.rank * init.threads + i) % os.availableParallelism()));
  // A worker on another machine resolves a preset into its own cache; a
  // folder must exist at the same path there.
  if (!existsSync(init.modelDir) && isPresetId(init.modelId)) init = { ...init, modelDir: await ensurePreset(init.modelId) };
  const config = loadModelConfig(init.modelDir);
  const store = WeightStore.open(init.modelDir);
  const pieces = loadShardPieces(config, store, init.plan);
  store.close();
  const maxSeq = Math.min(init.maxSeq, config.maxPositions);
  const rope = { ...ropeCosSin(config, maxSeq), maxSeq };
  // Where segments end: after every piece ('sublayer'), nowhere ('none'), or
  // only where this plan has a collective (TP: after each sublayer and the
  // vocab-parallel embedding; nothing else needs one inside a stage).
  const tp = init.plan.tp.size > 1;
  const cut = init.cut === 'sublayer' ? () => true : init.cut === 'none' ? () => false : () => tp;
  const world = init.dataPlane ? await joinWorld(init.dataPlane, init.rank) : null;
  const group = (link: LinkName) => {
    const name = init.links[link];
    return world && typeof name === 'string' ? faults.wrap(link, world.group(name)) : null;
  };
  const session = { device: init.device, threads: init.threads, spin: init.spin, deviceId: init.deviceId };
  const env: BlockEnv = { rank: init.rank, plan: init.plan, config, rope, session, group, shared: new Map() };
  const items = await buildItems(pieces, cut, env);
  const exec = await Executor.create(items, config.hidden, maxSeq, session);
  const sp = init.plan.sp;
  const links: StageLinks = {
    tp: group('tp'),
    pp: group('pp'),
    prev: init.links.prev,
    next: init.links.next,
    megatron: sp?.impl === 'megatron' && init.plan.tp.size > 1,
    sp: sp && sp.size > 1 && sp.impl !== 'megatron' ? { rank: sp.rank, size: sp.size, ring: sp.size / sp.ulysses, chunking: sp.chunking, group: group('sp') } : null,
  };
  const pools = new ServingPools({ exec, links, vocab: config.vocabSize, micro: init.micro, sampler: init.sampler });
  const state: Ready = { kind: 'ready', init, exec, batches: new Map(), pools, world, links, vocab: config.vocabSize };
  return { state, ready: { pid: process.pid, weightBytes: exec.weightBytes, loadMs: performance.now() - t0, segments: items.length, layers: init.plan.layers } };
}

/** One step of an open batch: the stage over every micro-batch, then sampling on the sampler rank. */
async function step(r: Ready, msg: Extract<HostMsg, { type: 'step' }>): Promise<StepResult> {
  const b = r.batches.get(msg.batch);
  if (!b) throw new Error(`unknown batch ${msg.batch}`);
  const { S, tokens } = msg;
  const B = b.size;
  if (tokens.length !== B * S) throw new Error(`step expects ${B}×${S} token ids, got ${tokens.length}`);
  const times = { computeMs: 0, commMs: 0, bubbleMs: 0 };
  const timings: SegmentTiming[] = [];
  const stats: StepStats = { routed: {} };
  if (msg.trace) r.world?.ledger.keepCalls();
  const logits = await runStage(r.exec, b.mb, S, tokens, r.links, r.vocab, times, timings, stats);
  const spans = msg.trace ? toSpans(timings, r.world?.ledger.takeCalls() ?? []) : undefined;
  // MoE blocks: expert load of this step (their collectives are comm spans in `timings`)
  const moe = Object.keys(stats.routed).length > 0 ? stats : null;
  const kvBytes = b.mb.states.reduce((a, st) => a + st.kvBytes(), 0);
  for (let i = 0; i < B; i++) for (let s = 0; s < S; s++) b.history[i].push(tokens[i * S + s]);
  if (!logits || !r.init.sampler) return { tokens: null, logits: null, ...times, kvBytes, moe, spans };
  const V = r.vocab;
  const sampled: number[] = [];
  for (let i = 0; i < B; i++) sampled.push(sampleToken(logits.subarray(i * V, (i + 1) * V), b.sampling[i].params, b.history[i], b.rngs[i]));
  return { tokens: sampled, logits: msg.wantLogits ? logits : null, ...times, kvBytes, moe, spans };
}

class RankProcess {
  private state: RankState = { kind: 'idle' };
  private rssPeak = 0;
  private faults = new Faults(null);

  constructor(private readonly send: (msg: RankMsg) => void) {}

  private ready(): Ready {
    if (this.state.kind !== 'ready') throw new Error(this.state.kind === 'failed' ? `rank failed earlier: ${this.state.reason}` : 'rank is not initialised');
    return this.state;
  }

  private async handle(msg: HostMsg): Promise<RankReplies[HostMsgType]> {
    switch (msg.type) {
      case 'init': {
        const { state, ready } = await load(msg.init, this.faults);
        this.state = state;
        return ready;
      }
      case 'open': {
        const r = this.ready();
        const mb = microBatches(r.exec, msg.size, msg.micro ?? r.init.micro);
        r.batches.set(msg.batch, { mb, size: msg.size, sampling: msg.sampling, rngs: msg.sampling.map((s) => new Rng(s.seed)), history: msg.sampling.map(() => []) });
        // lockstep padding under EP: trailing ghost sequences are never routed to experts
        if (msg.ghosts) markRealSequences(mb, msg.size - msg.ghosts);
        return null;
      }
      case 'step':
        return step(this.ready(), msg);
      case 'close':
        this.ready().batches.delete(msg.batch);
        return null;
      case 'ledger': {
        const r = this.ready();
        const summary = r.world ? r.world.ledger.summary() : null;
        if (msg.reset) r.world?.ledger.reset();
        return summary;
      }
      case 'shutdown':
        setImmediate(() => process.exit(0));
        return null;
      // Continuous batching: one running ragged batch per pool (serving-pool.ts).
      case 'serve-open':
        return this.ready().pools.open(msg.pool, msg.micro);
      case 'serve-prefill':
        return this.ready().pools.prefill(msg.pool, msg);
      case 'serve-step':
        return this.ready().pools.step(msg.pool, msg);
      case 'serve-close':
        this.ready().pools.close(msg.pool);
        return null;
    }
  }

  /** Serve host messages one at a time, in order, and send heartbeats. */
  serve(onMessage: (fn: (msg: HostMsg) => void) => void): void {
    let chain = Promise.resolve();
    onMessage((msg: HostMsg) => {
      chain = chain.then(async () => {
        try {
          if (msg.v !== 1) throw new Error(`protocol version ${msg.v} is not supported by this rank (expects 1)`);
          if (msg.type === 'init') this.faults = Faults.fromEnv(msg.init.rank);
          const phase = msg.type === 'init' ? 'load' : msg.type === 'step' ? (msg.S > 1 ? 'prefill' : 'decode') : msg.type === 'serve-prefill' ? 'join' : null;
          if (phase && (await this.faults.atMessage(phase)) === 'corrupt') {
            // test-only (rank/fault.ts): a reply the host must refuse
            this.send((msg.type === 'init' ? { v: 1, type: 'result', id: msg.id } : { v: 1, type: 'ok', id: msg.id, result: { tokens: [-1] }, rssPeak: 0 }) as unknown as RankMsg);
            return;
          }
          const result = await this.handle(msg);
          this.rssPeak = Math.max(this.rssPeak, process.memoryUsage.rss());
          this.send({ v: 1, type: 'ok', id: msg.id, result, rssPeak: this.rssPeak });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          if (msg.type === 'init') this.state = { kind: 'failed', reason: message };
          this.send({ v: 1, type: 'error', id: msg.id, message });
        }
      });
    });
    setInterval(() => {
      const rss = process.memoryUsage.rss();
      this.rssPeak = Math.max(this.rssPeak, rss);
      this.send({ v: 1, type: 'heartbeat', rss, rssPeak: this.rssPeak });
    }, 500).unref();
  }
}

/** `lab worker --join HOST:PORT`: serve a host on another process tree or machine over TCP. */
export function joinHost(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    sock.once('error', (e) => reject(new Error(`could not reach the ParaLab host at ${host}:${port}: ${e.message}`)));
    sock.once('connect', () => {
      const ch = new FramedSocket(sock);
      ch.send({ v: 1, type: 'hello', pid: process.pid, host: os.hostname() });
      new RankProcess((msg) => ch.send(msg)).serve((fn) => ch.on('message', fn));
      // The host going away ends the worker, like a forked rank's 'disconnect'.
      ch.on('close', () => process.exit(0));
      resolve();
    });
  });
}

function main(): void {
  if (!process.send) return;
  // A send that fails means the host is gone: end quietly (no EPIPE stack traces).
  const sent = (err: Error | null) => {
    if (err) process.exit(0);
  };
  new RankProcess((msg) => process.send?.(msg, undefined, {}, sent)).serve((fn) => process.on('message', fn));
  // The host disappearing (crash, SIGKILL) must not leave this process behind:
  // 'disconnect' when the JS thread is free, the lifeline thread even mid-step.
  process.on('disconnect', () => process.exit(0));
  startLifeline(lifelineFd());
  for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
}

main();
