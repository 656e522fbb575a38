/**
 * The host's view of its rank processes: spawn, handshake, supervise, stop.
 *
 * Every request has an id and a timeout, and every pending request settles:
 * with its reply, or rejected on timeout, exit, a malformed reply or a send
 * error. A rank that exits, stops beating, answers with an error or sends
 * something malformed fails the whole cluster with one message naming the
 * rank, the phase (load, prefill, decode step, serving join …) and the
 * cause; the other ranks are stopped; no process is left behind; the host
 * itself keeps running and can start a new cluster.
 *
 * Liveness: a forked rank beats from a thread of its own (rank/lifeline.ts)
 * over a pipe beside the IPC channel, so it beats even while its JS thread
 * is inside a long session.run; silence for `hangMs` means the process is
 * stopped or frozen. Ranks joined over TCP beat from their JS thread, so
 * for them silence only counts between steps.
 *
 * Long (~310 lines) on purpose: spawn, request, the three failure paths and
 * the watchdog are one state machine, read best in one place; the message
 * checks and phase names are in rank-msgs.ts.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { HostMsg, HostMsgType, RankInit, RankMsg, RankReady, RankReplies, RankRequest } from '../rank/protocol';
import { acceptWorkers } from './remote';
import { ClusterError } from './errors';
import { StepBudget } from './deadline';
import { STEP_TYPES, malformed, malformedResult, phaseOf, timeoutMessage } from './rank-msgs';

export { ClusterError };
import type { RankLink } from './remote';

interface Pending {
  resolve: (v: RankReplies[HostMsgType]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  type: HostMsgType;
  /** the phase a user reads in an error: 'load', 'prefill', 'decode step', 'serving join' … */
  what: string;
}

interface RankProc {
  rank: number;
  child: RankLink;
  pending: Map<number, Pending>;
  lastBeat: number;
  rss: number;
  rssPeak: number;
  exited: boolean;
  /** beats arrive from the rank's lifeline thread (also while it computes) */
  beatsOffThread: boolean;
}

export interface ClusterOptions {
  /** ms to wait for a rank to load its shard */
  initTimeoutMs?: number;
  /** ms of heartbeat silence after which a rank counts as hung (default 10 s) */
  heartbeatTimeoutMs?: number;
  /** the user's bound for one step (ms); otherwise it scales with the steps seen (host/deadline.ts) */
  stepTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** the last `count` ranks are workers that join over TCP (`lab worker --join HOST:PORT`) */
  remote?: { listen: string; count: number; onListening?: (address: string) => void };
}

/** " during 'prefill'": what the rank was doing (its oldest pending request), or '' when idle. */
function during(r: RankProc): string {
  const first = r.pending.values().next();
  return first.done ? '' : ` during '${first.value.what}'`;
}

/** How to start a rank: the bundled JS next to the app's main, or the TS source through tsx. */
export function rankEntry(): { file: string; execArgv: string[] } {
  // Bundled (electron-vite): out/main/rank.js beside index.js, or one level up from a chunk.
  for (const built of [path.join(__dirname, 'rank.js'), path.join(__dirname, '..', 'rank.js')]) {
    if (existsSync(built)) return { file: built, execArgv: [] };
  }
  return { file: path.resolve(__dirname, '../rank/main.ts'), execArgv: ['--import', 'tsx'] };
}

export class Cluster {
  private nextId = 1;
  private failure: ClusterError | null = null;
  private stopping: Promise<void> | null = null;
  private watchdog: NodeJS.Timeout;
  private lastTick = Date.now();
  private readonly failureListeners = new Set<(e: ClusterError) => void>();
  readonly ready: RankReady[] = [];
  /** how long one step may take (the step loop asks it and tells it what steps took) */
  readonly budget: StepBudget;

  private constructor(
    private readonly ranks: RankProc[],
    private readonly opts: Required<Pick<ClusterOptions, 'initTimeoutMs' | 'heartbeatTimeoutMs'>>,
    stepTimeoutMs?: number,
  ) {
    this.budget = new StepBudget(stepTimeoutMs);
    this.watchdog = setInterval(() => this.checkHeartbeats(), 100);
    this.watchdog.unref();
  }

  /** Fork one process per init, wait until every rank has loaded its shard. */
  static async start(inits: RankInit[], options: ClusterOptions = {}): Promise<Cluster> {
    const opts = { initTimeoutMs: options.initTimeoutMs ?? 300_000, heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 10_000 };
    const entry = rankEntry();
    const remoteCount = options.remote?.count ?? 0;
    const remote = options.remote ? await acceptWorkers(options.remote, opts.initTimeoutMs) : [];
    const ranks: RankProc[] = inits.map((init, i) => {
      if (i >= inits.length - remoteCount) {
        return { rank: init.rank, child: remote[i - (inits.length - remoteCount)], pending: new Map(), lastBeat: Date.now(), rss: 0, rssPeak: 0, exited: false, beatsOffThread: false };
      }
      // fd 4: the lifeline pipe the rank's heartbeat thread writes to (and learns from that the host is gone)
      const child = fork(entry.file, [], {
        execArgv: entry.execArgv,
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
        env: { ...process.env, ...options.env, ELECTRON_RUN_AS_NODE: '1', PARALAB_RANK: String(init.rank), PARALAB_LIFELINE_FD: '4' },
      });
      const proc: RankProc = { rank: init.rank, child, pending: new Map(), lastBeat: Date.now(), rss: 0, rssPeak: 0, exited: false, beatsOffThread: false };
      const lifeline = child.stdio[4];
      lifeline?.on('data', () => {
        proc.lastBeat = Date.now();
        proc.beatsOffThread = true;
      });
      lifeline?.on('error', () => undefined);
      return proc;
    });
    const cluster = new Cluster(ranks, opts, options.stepTimeoutMs);
    for (const r of ranks) cluster.attach(r);
    try {
      const ready = await Promise.all(inits.map((init, i) => cluster.request(i, { type: 'init', init }, opts.initTimeoutMs)));
      cluster.ready.push(...ready);
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  get size(): number {
    return this.ranks.length;
  }

  get failed(): ClusterError | null {
    return this.failure;
  }

  memory(): { rss: number; rssPeak: number }[] {
    return this.ranks.map((r) => ({ rss: r.rss, rssPeak: r.rssPeak }));
  }

  pids(): number[] {
    return this.ranks.map((r) => r.child.pid ?? -1);
  }

  /** Called once, with the first failure (a warm engine drops itself at once, not at its next use). */
  onFailure(listener: (e: ClusterError) => void): () => void {
    if (this.failure) {
      listener(this.failure);
      return () => undefined;
    }
    this.failureListeners.add(listener);
    return () => void this.failureListeners.delete(listener);
  }

  /** Fail the cluster from outside (a reply the step loop found inconsistent). */
  abort(err: ClusterError): void {
    this.fail(err);
  }

  /** Send one request to one rank; resolves with its typed reply or rejects with the rank's error. */
  request<R extends RankRequest>(rank: number, req: R, timeoutMs = 120_000): Promise<RankReplies[R['type']]> {
    if (this.failure) return Promise.reject(this.failure);
    const r = this.ranks[rank];
    if (!r) return Promise.reject(new ClusterError(`no rank ${rank} in a cluster of ${this.ranks.length}`, null));
    const id = this.nextId++;
    const msg = { ...req, v: 1, id } as HostMsg;
    const what = phaseOf(req);
    return new Promise<RankReplies[R['type']]>((resolve, reject) => {
      const timer = setTimeout(() => {
        // the timed-out request is rejected here (fail() rejects the others): it must settle
        r.pending.delete(id);
        const err = new ClusterError(timeoutMessage(rank, what, req.type, timeoutMs, this.budget.userMs !== undefined), rank);
        reject(err);
        this.fail(err);
      }, timeoutMs);
      r.pending.set(id, { resolve: resolve as (v: RankReplies[HostMsgType]) => void, reject, timer, type: req.type, what });
      try {
        r.child.send(msg, (err) => {
          if (err) this.fail(new ClusterError(`could not send '${what}' to rank ${rank}: ${err.message}`, rank));
        });
      } catch (e) {
        // a channel already closed throws synchronously (ERR_IPC_CHANNEL_CLOSED)
        this.fail(new ClusterError(`could not send '${what}' to rank ${rank}: ${(e as Error).message}`, rank));
      }
    });
  }

  /** The same request to every rank; results in rank order. */
  broadcast<R extends RankRequest>(req: R, timeoutMs?: number): Promise<RankReplies[R['type']][]> {
    return Promise.all(this.ranks.map((_, i) => this.request(i, req, timeoutMs)));
  }

  /** Orderly shutdown; kills whatever does not exit in time. Safe to call twice. */
  stop(graceMs = 2000): Promise<void> {
    this.stopping ??= this.stopAll(graceMs);
    return this.stopping;
  }

  private async stopAll(graceMs: number): Promise<void> {
    clearInterval(this.watchdog);
    await Promise.all(
      this.ranks.map(async (r) => {
        if (r.exited) return;
        const exited = new Promise<void>((res) => r.child.once('exit', () => res()));
        // A rank blocked inside a collective whose peer died cannot read
        // messages: after a failure, kill at once instead of asking.
        if (r.child.connected && !this.failure) r.child.send({ v: 1, type: 'shutdown', id: 0 } satisfies HostMsg, () => undefined);
        else r.child.kill('SIGKILL');
        const timer = setTimeout(() => r.child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
    for (const r of this.ranks) this.rejectAll(r, this.failure ?? new ClusterError('cluster stopped', null));
  }

  private attach(r: RankProc): void {
    r.child.on('message', (raw: unknown) => {
      const bad = malformed(raw);
      if (bad) {
        this.fail(new ClusterError(`rank ${r.rank} sent a malformed message${during(r)}: ${bad}`, r.rank));
        return;
      }
      const msg = raw as RankMsg;
      if (msg.type === 'heartbeat') {
        r.lastBeat = Date.now();
        r.rss = msg.rss;
        r.rssPeak = Math.max(r.rssPeak, msg.rssPeak);
        return;
      }
      r.lastBeat = Date.now();
      const p = r.pending.get(msg.id);
      if (!p) return;
      if (msg.type === 'ok') {
        const wrong = malformedResult(p.type, msg.result);
        if (wrong) {
          this.fail(new ClusterError(`rank ${r.rank} sent a malformed reply to '${p.what}': ${wrong}`, r.rank));
          return;
        }
      }
      r.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.type === 'ok') {
        r.rssPeak = Math.max(r.rssPeak, msg.rssPeak);
        p.resolve(msg.result);
      } else {
        const err = new ClusterError(`rank ${r.rank} failed in '${p.what}': ${msg.message}`, r.rank);
        p.reject(err);
        // a step that failed on one rank leaves its peers inside collectives: the cluster cannot go on
        if (STEP_TYPES.has(p.type)) this.fail(err);
      }
    });
    r.child.on('exit', (code, signal) => {
      r.exited = true;
      if (this.stopping) return;
      const how = signal ? `was killed by ${signal}` : code === null ? 'lost its connection to the host' : `exited with code ${code}`;
      this.fail(new ClusterError(`rank ${r.rank} (pid ${r.child.pid}) ${how}${during(r)}`, r.rank));
    });
    r.child.on('error', (err) => this.fail(new ClusterError(`rank ${r.rank}: ${err.message}`, r.rank)));
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    // The host's own loop was blocked (a long synchronous task): the beats are
    // waiting unread in the pipes, so silence now says nothing about the ranks.
    const blocked = now - this.lastTick > 1000;
    this.lastTick = now;
    if (blocked) {
      for (const r of this.ranks) r.lastBeat = Math.max(r.lastBeat, now - 1000);
      return;
    }
    for (const r of this.ranks) {
      if (r.exited || now - r.lastBeat <= this.opts.heartbeatTimeoutMs) continue;
      const pending = [...r.pending.values()];
      // A rank beating from its JS thread (joined over TCP) is silent while it
      // computes (session.run is synchronous); its step timeout covers that.
      if (!r.beatsOffThread && pending.some((p) => p.type !== 'ledger' && p.type !== 'close')) continue;
      const s = ((now - r.lastBeat) / 1000).toFixed(1);
      this.fail(new ClusterError(`rank ${r.rank} (pid ${r.child.pid}) stopped responding${during(r) || ' while idle'}: no heartbeat for ${s} s (the process is stopped, frozen or starved of CPU)`, r.rank));
      return;
    }
  }

  /** First failure wins: every pending request rejects with it and all ranks are stopped. */
  private fail(err: ClusterError): void {
    if (this.failure || this.stopping) return;
    this.failure = err;
    for (const r of this.ranks) this.rejectAll(r, err);
    for (const l of this.failureListeners) {
      try {
        l(err);
      } catch {
        // a listener's bug must not stop the shutdown
      }
    }
    this.failureListeners.clear();
    void this.stop();
  }

  private rejectAll(r: RankProc, err: Error): void {
    for (const p of r.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    r.pending.clear();
  }
}
