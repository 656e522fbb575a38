/**
 * A rank process: owns one device, loads its own shard of the weights from
 * the model files, builds its segment graphs and runs them when the host
 * says so. Entry point of every child the Cluster forks.
 *
 * State is one tagged union (exo's runner): idle → loading → ready | failed.
 */
import { loadModelConfig } from '../model/config';
import { WeightStore } from '../model/weights';
import { ropeCosSin } from '../model/rope';
import { buildItems } from './blocks';
import './sp-attention';
import './megatron-sp';
import { markRealSequences, takeMoeStats } from './moe-block';
import { loadShardPieces } from '../runtime/shard';
import { Executor } from '../runtime/executor';
import { microBatches, runStage } from './stage';
import type { MicroBatches, StageLinks } from './stage';
import { joinWorld } from '../comm/world';
import { pinToCpus } from '../comm/shm-native';
import os from 'node:os';
import { existsSync } from 'node:fs';
import { isPresetId } from '../model/presets';
import { ensurePreset } from '../model/synth';
import net from 'node:net';
import { FramedSocket } from './channel';
import type { World } from '../comm/world';
import { Rng } from '../sample/rng';
import { sampleToken } from '../sample/sampler';
import type { HostMsg, RankInit, RankMsg, RankReady, SeqSampling, StepResult } from './protocol';
import type { SegmentTiming } from '../runtime/executor';
import type { LedgerSummary } from '../comm/ledger';
import { toSpans } from './spans';
import { poolClose, poolOpen, poolPrefill, poolStep } from '../serving-kv';

interface Batch {
  mb: MicroBatches;
  size: number;
  sampling: SeqSampling[];
  rngs: Rng[];
  /** prompt + generated ids per sequence, for the repetition penalty */
  history: number[][];
}

type RankState =
  | { kind: 'idle' }
  | { kind: 'ready'; init: RankInit; exec: Executor; batches: Map<string, Batch>; world: World | null; links: StageLinks; vocab: number }
  | { kind: 'failed'; reason: string };

let state: RankState = { kind: 'idle' };
let rssPeak = 0;

/** Where messages to the host go: the IPC channel of a forked rank, or a TCP socket (`lab worker --join`). */
let send: (msg: RankMsg) => void = (msg) => process.send?.(msg);

async function init(init: RankInit): Promise<RankReady> {
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
  const group = (link: keyof RankInit['links']) => {
    const name = init.links[link];
    return world && typeof name === 'string' ? world.group(name) : null;
  };
  const session = { device: init.device, threads: init.threads, spin: init.spin, deviceId: init.deviceId };
  const items = await buildItems(pieces, cut, { init, config, rope, session, group });
  const exec = await Executor.create(items, config.hidden, maxSeq, session);
  const links: StageLinks = {
    tp: group('tp'),
    pp: group('pp'),
    prev: init.links.prev,
    next: init.links.next,
    megatron: init.plan.sp?.impl === 'megatron' && init.plan.tp.size > 1,
    sp:
      init.plan.sp && init.plan.sp.size > 1 && init.plan.sp.impl !== 'megatron'
        ? { rank: init.plan.sp.rank, size: init.plan.sp.size, ring: init.plan.sp.size / init.plan.sp.ulysses, chunking: init.plan.sp.chunking, group: group('sp') }
        : null,
  };
  state = { kind: 'ready', init, exec, batches: new Map(), world, links, vocab: config.vocabSize };
  return { pid: process.pid, weightBytes: exec.weightBytes, loadMs: performance.now() - t0, segments: items.length, layers: init.plan.layers };
}

function ready() {
  if (state.kind !== 'ready') throw new Error(state.kind === 'failed' ? `rank failed earlier: ${state.reason}` : 'rank is not initialised');
  return state;
}

async function step(batchId: string, S: number, tokens: Int32Array, wantLogits: boolean, trace = false): Promise<StepResult> {
  const r = ready();
  const b = r.batches.get(batchId);
  if (!b) throw new Error(`unknown batch ${batchId}`);
  const B = b.size;
  if (tokens.length !== B * S) throw new Error(`step expects ${B}×${S} token ids, got ${tokens.length}`);
  const times = { computeMs: 0, commMs: 0, bubbleMs: 0 };
  takeMoeStats();
  const timings: SegmentTiming[] = [];
  if (trace) r.world?.ledger.keepCalls();
  const logits = await runStage(r.exec, b.mb, S, tokens, r.links, r.vocab, times, timings);
  const spans = trace ? toSpans(timings, r.world?.ledger.takeCalls() ?? []) : undefined;
  // MoE blocks: expert load of this step (their collectives are comm spans in `timings`)
  const moe = takeMoeStats();
  const kvBytes = b.mb.states.reduce((a, st) => a + st.kvBytes(), 0);
  for (let i = 0; i < B; i++) for (let s = 0; s < S; s++) b.history[i].push(tokens[i * S + s]);
  if (!logits || !r.init.sampler) return { tokens: null, logits: null, ...times, kvBytes, moe, spans };
  const V = r.vocab;
  const sampled: number[] = [];
  for (let i = 0; i < B; i++) {
    const row = logits.subarray(i * V, (i + 1) * V);
    sampled.push(sampleToken(row, b.sampling[i].params, b.history[i], b.rngs[i]));
  }
  return { tokens: sampled, logits: wantLogits ? logits : null, ...times, kvBytes, moe, spans };
}

async function handle(msg: HostMsg): Promise<unknown> {
  switch (msg.type) {
    case 'init':
      return init(msg.init);
    case 'open': {
      const r = ready();
      r.batches.set(msg.batch, {
        mb: microBatches(r.exec, msg.size, r.init.micro),
        size: msg.size,
        sampling: msg.sampling,
        rngs: msg.sampling.map((s) => new Rng(s.seed)),
        history: msg.sampling.map(() => []),
      });
      // lockstep padding under EP: trailing ghost sequences are never routed to experts
      if (msg.ghosts) markRealSequences(r.batches.get(msg.batch)!.mb, msg.size - msg.ghosts);
      return null;
    }
    case 'step':
      return step(msg.batch, msg.S, msg.tokens, msg.wantLogits, msg.trace);
    case 'close':
      ready().batches.delete(msg.batch);
      return null;
    case 'ledger': {
      const r = ready();
      const summary: LedgerSummary | null = r.world ? r.world.ledger.summary() : null;
      if (msg.reset) r.world?.ledger.reset();
      return summary;
    }
    case 'shutdown':
      setImmediate(() => process.exit(0));
      return null;
    // Continuous batching: one running ragged batch per pool (serving-kv.ts).
    case 'serve-open':
      return poolOpen(serveCtx(), msg.pool);
    case 'serve-prefill':
      return poolPrefill(serveCtx(), msg.pool, msg);
    case 'serve-step':
      return poolStep(serveCtx(), msg.pool, msg);
    case 'serve-close':
      poolClose(msg.pool);
      return null;
  }
}

function serveCtx() {
  const r = ready();
  return { exec: r.exec, links: r.links, vocab: r.vocab, micro: r.init.micro, sampler: r.init.sampler };
}

/** Serve host messages one at a time, in order: a rank is a sequential device. */
export function serve(onMessage: (fn: (msg: HostMsg) => void) => void, reply: (msg: RankMsg) => void): void {
  send = reply;
  let chain = Promise.resolve();
  onMessage((msg: HostMsg) => {
    chain = chain.then(async () => {
      try {
        if (msg.v !== 1) throw new Error(`protocol version ${msg.v} is not supported by this rank (expects 1)`);
        const result = await handle(msg);
        rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
        send({ v: 1, type: 'ok', id: msg.id, result, rssPeak });
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        if (msg.type === 'init') state = { kind: 'failed', reason: message };
        send({ v: 1, type: 'error', id: msg.id, message });
      }
    });
  });
  setInterval(() => {
    const rss = process.memoryUsage.rss();
    rssPeak = Math.max(rssPeak, rss);
    send({ v: 1, type: 'heartbeat', rss, rssPeak });
  }, 500).unref();
}

/** `lab worker --join HOST:PORT`: serve a host on another process tree or machine over TCP. */
export function joinHost(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    sock.once('error', (e) => reject(new Error(`could not reach the ParaLab host at ${host}:${port}: ${e.message}`)));
    sock.once('connect', () => {
      const ch = new FramedSocket(sock);
      ch.send({ v: 1, type: 'hello', pid: process.pid, host: os.hostname() });
      serve((fn) => ch.on('message', fn), (msg) => ch.send(msg));
      // The host going away ends the worker, like a forked rank's 'disconnect'.
      ch.on('close', () => process.exit(0));
      resolve();
    });
  });
}

function main(): void {
  if (!process.send) return;
  serve((fn) => process.on('message', fn), (msg) => process.send?.(msg));
  // The host disappearing (crash, SIGKILL) must not leave this process behind.
  process.on('disconnect', () => process.exit(0));
}

main();
