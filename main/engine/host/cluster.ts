/**
 * The host's view of its rank processes: spawn, handshake, supervise, stop.
 *
 * Every request has an id and a timeout. A rank that exits, stops sending
 * heartbeats or answers with an error fails the whole cluster with a message
 * naming the rank and the cause; the other ranks are stopped; no process is
 * left behind; the host itself keeps running and can start a new cluster.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { HostMsg, HostMsgType, RankInit, RankMsg, RankReady, RankReplies, RankRequest } from '../rank/protocol';
import { acceptWorkers } from './remote';
import { ClusterError } from './errors';

export { ClusterError };
import type { RankLink } from './remote';

interface Pending {
  resolve: (v: RankReplies[HostMsgType]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
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
}

export interface ClusterOptions {
  /** ms to wait for a rank to load its shard */
  initTimeoutMs?: number;
  /** ms of heartbeat silence after which a rank counts as hung */
  heartbeatTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** the last `count` ranks are workers that join over TCP (`lab worker --join HOST:PORT`) */
  remote?: { listen: string; count: number; onListening?: (address: string) => void };
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
  readonly ready: RankReady[] = [];

  private constructor(
    private readonly ranks: RankProc[],
    private readonly opts: Required<Pick<ClusterOptions, 'initTimeoutMs' | 'heartbeatTimeoutMs'>>,
  ) {
    this.watchdog = setInterval(() => this.checkHeartbeats(), 250);
    this.watchdog.unref();
  }

  /** Fork one process per init, wait until every rank has loaded its shard. */
  static async start(inits: RankInit[], options: ClusterOptions = {}): Promise<Cluster> {
    const opts = { initTimeoutMs: options.initTimeoutMs ?? 300_000, heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 30_000 };
    const entry = rankEntry();
    const remoteCount = options.remote?.count ?? 0;
    const remote = options.remote ? await acceptWorkers(options.remote, opts.initTimeoutMs) : [];
    const ranks: RankProc[] = inits.map((init, i) => {
      if (i >= inits.length - remoteCount) {
        return { rank: init.rank, child: remote[i - (inits.length - remoteCount)], pending: new Map(), lastBeat: Date.now(), rss: 0, rssPeak: 0, exited: false };
      }
      const child = fork(entry.file, [], {
        execArgv: entry.execArgv,
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, ...options.env, ELECTRON_RUN_AS_NODE: '1', PARALAB_RANK: String(init.rank) },
      });
      return { rank: init.rank, child, pending: new Map(), lastBeat: Date.now(), rss: 0, rssPeak: 0, exited: false };
    });
    const cluster = new Cluster(ranks, opts);
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

  /** Send one request to one rank; resolves with its typed reply or rejects with the rank's error. */
  request<R extends RankRequest>(rank: number, req: R, timeoutMs = 120_000): Promise<RankReplies[R['type']]> {
    if (this.failure) return Promise.reject(this.failure);
    const r = this.ranks[rank];
    const id = this.nextId++;
    const msg = { ...req, v: 1, id } as HostMsg;
    return new Promise<RankReplies[R['type']]>((resolve, reject) => {
      const timer = setTimeout(() => {
        r.pending.delete(id);
        this.fail(new ClusterError(`rank ${rank} did not answer '${req.type}' within ${Math.round(timeoutMs / 1000)} s (hung?)`, rank));
      }, timeoutMs);
      r.pending.set(id, { resolve: resolve as (v: RankReplies[HostMsgType]) => void, reject, timer, what: req.type });
      r.child.send(msg, (err) => {
        if (err) this.fail(new ClusterError(`could not send '${req.type}' to rank ${rank}: ${err.message}`, rank));
      });
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
    r.child.on('message', (msg: RankMsg) => {
      if (msg.type === 'heartbeat') {
        r.lastBeat = Date.now();
        r.rss = msg.rss;
        r.rssPeak = Math.max(r.rssPeak, msg.rssPeak);
        return;
      }
      r.lastBeat = Date.now();
      const p = r.pending.get(msg.id);
      if (!p) return;
      r.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.type === 'ok') {
        r.rssPeak = Math.max(r.rssPeak, msg.rssPeak);
        p.resolve(msg.result);
      }
      else p.reject(new ClusterError(`rank ${r.rank}: ${msg.message}`, r.rank));
    });
    r.child.on('exit', (code, signal) => {
      r.exited = true;
      if (this.stopping) return;
      const busy = [...r.pending.values()].map((p) => p.what);
      const how = signal ? `was killed by ${signal}` : code === null ? 'lost its connection to the host' : `exited with code ${code}`;
      this.fail(new ClusterError(`rank ${r.rank} (pid ${r.child.pid}) ${how}${busy.length ? ` during '${busy[0]}'` : ''}`, r.rank));
    });
    r.child.on('error', (err) => this.fail(new ClusterError(`rank ${r.rank}: ${err.message}`, r.rank)));
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    for (const r of this.ranks) {
      // Loading a shard and long prefills block the rank's JS thread (session.run
      // is synchronous in onnxruntime-node); those requests have their own timeouts.
      const busy = [...r.pending.values()].some((p) => p.what === 'init' || p.what === 'step');
      if (!r.exited && !busy && now - r.lastBeat > this.opts.heartbeatTimeoutMs) {
        this.fail(new ClusterError(`rank ${r.rank} (pid ${r.child.pid}) sent no heartbeat for ${Math.round((now - r.lastBeat) / 1000)} s (hung or starved)`, r.rank));
        return;
      }
    }
  }

  /** First failure wins: every pending request rejects with it and all ranks are stopped. */
  private fail(err: ClusterError): void {
    if (this.failure || this.stopping) return;
    this.failure = err;
    for (const r of this.ranks) this.rejectAll(r, err);
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
