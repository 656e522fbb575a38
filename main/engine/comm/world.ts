/**
 * The data plane of one cluster: which transport, which groups, how a rank
 * reaches its peers.
 *
 *   host:  const setup = await prepareWorld({ world, transport, groups })
 *          … put `setup` (plain JSON) in every rank's init message …
 *          destroyWorld(setup)            // in a finally; safe to call twice
 *   rank:  const world = await joinWorld(setup, rank)
 *          world.group('tp0').allReduce(x); world.ledger.summary(); world.close()
 *
 * shm: prepareWorld creates one segment file per group under /dev/shm
 * (paralab-<session>-<group index>) and stamps its layout; each member maps
 * it, and the last member to map it unlinks the file, so nothing is left in
 * /dev/shm even if the host is killed later. destroyWorld (and the host's
 * exit) removes whatever is left. unix / tcp: prepareWorld starts the
 * rendezvous server (rendezvous.ts); ranks may start in any order.
 * 'auto' = shm when the addon loads and /dev/shm has room, else unix sockets
 * (tcp on Windows). Every rank that appears in a group must call joinWorld.
 */
import { existsSync, mkdtempSync, rmSync, statfsSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CommError } from './communicator';
import type { Communicator } from './communicator';
import { Ledger } from './ledger';
import { startRendezvous } from './rendezvous';
import type { RendezvousServer } from './rendezvous';
import { ShmGroup } from './shm';
import { shmAddon } from './shm-native';
import type { ShmAddon } from './shm-native';
import { ShmSegment, checkShmParams, shmHeader, shmLayout } from './shm-segment';
import type { ShmParams } from './shm-segment';
import { connectMesh } from './socket-mesh';
import { SocketGroup } from './socket';

export type Transport = 'shm' | 'unix' | 'tcp' | 'auto';

export interface GroupSpec {
  name: string;
  /** global ranks, in group-rank order */
  ranks: number[];
}

/** Plain JSON: goes to every rank inside its init message. */
export interface WorldSetup {
  version: 1;
  id: string;
  transport: 'shm' | 'unix' | 'tcp';
  world: number;
  groups: GroupSpec[];
  timeoutMs: number;
  /** shm only: one segment file per group (same order as groups) and its parameters */
  shm: (ShmParams & { files: string[] }) | null;
  /** unix / tcp only */
  sockets: { rendezvous: string; listenHost: string; dir: string | null } | null;
}

export interface PrepareOptions {
  world: number;
  transport?: Transport;
  groups: GroupSpec[];
  /** a peer that has not arrived after this long fails the op with a CommError (default 60 s) */
  timeoutMs?: number;
  /** shm: busy-wait this long before sleeping (default 50 µs; 5 µs when ranks outnumber cores) */
  spinUs?: number;
  /** shm: then sleep on the thread this long before waiting off the event loop (default 20 ms) */
  blockMs?: number;
  /** shm: bytes per rank and window of a collective (default 1 MiB: measured faster than 4 MiB for 16 MiB all-reduces, the windows stay in cache) */
  slotBytes?: number;
  /** shm send/recv: bytes per mailbox chunk (default 1 MiB) and chunks in flight per pair (default 4) */
  chunkBytes?: number;
  chunks?: number;
  /** tcp: where the rendezvous and the ranks listen (default 127.0.0.1; 0.0.0.0 for ranks on other hosts) */
  host?: string;
  /** tcp: the rendezvous address given to ranks (default: host, or this machine's name when host is 0.0.0.0 / ::) */
  advertise?: string;
}

const MiB = 2 ** 20;
const servers = new Map<string, RendezvousServer>();
const exitHooks = new Map<string, () => void>();

// ── host side ───────────────────────────────────────────────────────────

export async function prepareWorld(o: PrepareOptions): Promise<WorldSetup> {
  checkGroups(o.world, o.groups);
  const id = `${process.pid.toString(36)}${randomBytes(4).toString('hex')}`;
  const timeoutMs = o.timeoutMs ?? 60_000;
  const params: ShmParams = {
    slotBytes: o.slotBytes ?? MiB,
    chunkBytes: o.chunkBytes ?? MiB,
    chunks: o.chunks ?? 4,
    spinUs: o.spinUs ?? (o.world <= os.availableParallelism() ? 50 : 5),
    blockMs: o.blockMs ?? 20,
    timeoutMs,
  };
  checkShmParams(params);
  const transport = chooseTransport(o.transport ?? 'auto', o.groups, params);
  const base = { version: 1 as const, id, transport, world: o.world, groups: o.groups, timeoutMs, shm: null, sockets: null };
  const setup: WorldSetup = transport === 'shm' ? { ...base, shm: createSegments(id, o.groups, params) } : { ...base, sockets: await startSockets(id, transport, o) };
  const hook = () => destroyWorld(setup);
  exitHooks.set(id, hook);
  process.once('exit', hook);
  return setup;
}

/** Remove what prepareWorld created (files, socket folder, rendezvous server). Safe to call twice. */
export function destroyWorld(setup: WorldSetup): void {
  for (const f of setup.shm?.files ?? []) rmSync(f, { force: true });
  if (setup.sockets?.dir) rmSync(setup.sockets.dir, { recursive: true, force: true });
  servers.get(setup.id)?.close();
  servers.delete(setup.id);
  const hook = exitHooks.get(setup.id);
  if (hook) process.removeListener('exit', hook);
  exitHooks.delete(setup.id);
}

function checkGroups(world: number, groups: GroupSpec[]): void {
  const bad = (what: string) => {
    throw new CommError(`data-plane groups: ${what}`);
  };
  if (!(Number.isInteger(world) && world >= 1)) bad(`world must be a positive integer, got ${world}`);
  const names = new Set<string>();
  for (const g of groups) {
    if (names.has(g.name)) bad(`group name '${g.name}' is used twice`);
    names.add(g.name);
    if (g.ranks.length < 1 || g.ranks.length > 64) bad(`group '${g.name}' has ${g.ranks.length} ranks; 1…64 are supported`);
    if (new Set(g.ranks).size !== g.ranks.length) bad(`group '${g.name}' lists a rank twice: [${g.ranks}]`);
    if (g.ranks.some((r) => !Number.isInteger(r) || r < 0 || r >= world)) bad(`group '${g.name}' has ranks [${g.ranks}] outside 0…${world - 1}`);
  }
}

/** What 'auto' picks here, and why (`lab devices`, the status bar); a default 2-rank group stands in for the plan. */
export function autoTransport(): { transport: 'shm' | 'unix' | 'tcp'; reason: string } {
  const p: ShmParams = { slotBytes: MiB, chunkBytes: MiB, chunks: 4, spinUs: 50, blockMs: 20, timeoutMs: 60_000 };
  const why = (() => {
    try {
      return shmUnavailable([{ name: 'probe', ranks: [0, 1] }], p);
    } catch (e) {
      return `/dev/shm cannot be inspected (${(e as Error).message})`;
    }
  })();
  if (!why) return { transport: 'shm', reason: 'shared memory: collectives run inside the native addon (no external buffers, so the same in Electron and Node)' };
  return { transport: process.platform === 'win32' ? 'tcp' : 'unix', reason: why };
}

function chooseTransport(t: Transport, groups: GroupSpec[], p: ShmParams): 'shm' | 'unix' | 'tcp' {
  const fallback = process.platform === 'win32' ? 'tcp' : 'unix';
  if (t === 'unix' || t === 'tcp') return t;
  const why = shmUnavailable(groups, p);
  if (!why) return 'shm';
  if (t === 'shm') throw new CommError(`the shared-memory transport is unavailable: ${why}; use transport 'unix' or 'tcp'`);
  return fallback;
}

function shmUnavailable(groups: GroupSpec[], p: ShmParams): string | null {
  if (process.platform !== 'linux') return `shared memory is Linux-only for now (this is ${process.platform}): ranks talk over ${process.platform === 'win32' ? 'TCP' : 'Unix sockets'}`;
  if (!shmAddon()) return 'the native addon build/Release/paralab_shm.node is not built or cannot load here (run `npm install` on Linux with a C compiler)';
  const need = groups.reduce((s, g) => s + shmLayout(g.ranks.length, p).bytes, 0);
  const fs = statfsSync('/dev/shm');
  const free = fs.bavail * fs.bsize;
  if (free < need) return `/dev/shm has ${Math.floor(free / MiB)} MiB free but the segments need up to ${Math.ceil(need / MiB)} MiB (lower slotBytes / chunkBytes, or enlarge /dev/shm)`;
  return null;
}

function createSegments(id: string, groups: GroupSpec[], p: ShmParams): ShmParams & { files: string[] } {
  const native = shmAddon()!;
  const files: string[] = [];
  try {
    groups.forEach((g, i) => {
      const file = `/dev/shm/paralab-${id}-${i}`;
      native.create(file, shmLayout(g.ranks.length, p).bytes, shmHeader(g.ranks.length, p));
      files.push(file);
    });
  } catch (e) {
    for (const f of files) rmSync(f, { force: true });
    throw e;
  }
  return { ...p, files };
}

async function startSockets(id: string, transport: 'unix' | 'tcp', o: PrepareOptions): Promise<NonNullable<WorldSetup['sockets']>> {
  const peers = peersOf(o.world, o.groups);
  const host = o.host ?? '127.0.0.1';
  const dir = transport === 'unix' ? mkdtempSync(path.join(os.tmpdir(), 'paralab-')) : null;
  const advertise = o.advertise ?? (host === '0.0.0.0' || host === '::' ? os.hostname() : host);
  const server = await startRendezvous(id, peers, dir ? { path: path.join(dir, 'rendezvous.sock') } : { host, advertise });
  servers.set(id, server);
  return { rendezvous: server.address, listenHost: host, dir };
}

/** peers[r]: every rank r shares a group with. */
export function peersOf(world: number, groups: GroupSpec[]): number[][] {
  return Array.from({ length: world }, (_, r) => [...new Set(groups.filter((g) => g.ranks.includes(r)).flatMap((g) => g.ranks))].filter((p) => p !== r).sort((a, b) => a - b));
}

// ── rank side ───────────────────────────────────────────────────────────

export interface World {
  readonly rank: number;
  readonly transport: WorldSetup['transport'];
  readonly ledger: Ledger;
  /** the communicator of group `name` (this rank must be a member) */
  group(name: string): Communicator;
  /** names of the groups this rank belongs to */
  groups(): string[];
  /** sockets: payload bytes actually written to / read from all links (null on shm) */
  wireBytes(): { sent: number; recv: number } | null;
  close(): void;
}

export async function joinWorld(setup: WorldSetup, rank: number): Promise<World> {
  if (setup.version !== 1) throw new CommError(`world setup version ${setup.version} is not understood by this rank (expects 1): host and rank run different ParaLab versions`, 'join');
  const ledger = new Ledger();
  const joined = setup.shm ? joinShm(setup, setup.shm, rank, ledger) : await joinSockets(setup, setup.sockets!, rank, ledger);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    process.removeListener('exit', close);
    joined.close();
  };
  process.once('exit', close);
  return {
    rank,
    transport: setup.transport,
    ledger,
    group(name) {
      const g = joined.groups.get(name);
      if (!g) throw new CommError(`rank ${rank} is not in group '${name}' (its groups: ${[...joined.groups.keys()].join(', ') || 'none'})`);
      return g;
    },
    groups: () => [...joined.groups.keys()],
    wireBytes: joined.wireBytes,
    close,
  };
}

interface Joined {
  groups: Map<string, Communicator>;
  wireBytes: () => { sent: number; recv: number } | null;
  close: () => void;
}

function joinShm(setup: WorldSetup, shm: NonNullable<WorldSetup['shm']>, rank: number, ledger: Ledger): Joined {
  const native = shmAddon();
  if (!native) throw new CommError(`rank ${rank} cannot load the shared-memory addon the host chose (build/Release/paralab_shm.node): rebuild with \`npm install\`, or run with transport 'unix'`, 'join');
  const groups = new Map<string, Communicator>();
  const segs: { seg: ShmSegment; group: ShmGroup }[] = [];
  setup.groups.forEach((g, i) => {
    const me = g.ranks.indexOf(rank);
    if (me < 0) return;
    const seg = openSegment(native, shm.files[i], g.ranks.length, me, shm, g.name);
    if (seg.join()) rmSafe(shm.files[i]);
    const group = new ShmGroup(g.name, seg, ledger);
    segs.push({ seg, group });
    groups.set(g.name, group);
  });
  return {
    groups,
    wireBytes: () => null,
    close: () => {
      for (const { seg, group } of segs) {
        seg.markClosed(false);
        group.close(new CommError(`the world of rank ${rank} is closed`));
        seg.unmap();
      }
    },
  };
}

function openSegment(native: ShmAddon, file: string, n: number, me: number, p: ShmParams, group: string): ShmSegment {
  if (!existsSync(file)) throw new CommError(`shared-memory segment of group '${group}' (${file}) is gone: the host destroyed this world or exited; start a new run`, 'join', group);
  return new ShmSegment(file, n, me, p, native, group);
}

function rmSafe(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    /* already removed by destroyWorld */
  }
}

async function joinSockets(setup: WorldSetup, s: NonNullable<WorldSetup['sockets']>, rank: number, ledger: Ledger): Promise<Joined> {
  const links = await connectMesh({ id: setup.id, rank, peers: peersOf(setup.world, setup.groups)[rank], timeoutMs: setup.timeoutMs, ...s });
  const groups = new Map<string, Communicator>();
  setup.groups.forEach((g, i) => {
    if (g.ranks.includes(rank)) groups.set(g.name, new SocketGroup(g.name, i, rank, g.ranks, links, ledger, setup.timeoutMs));
  });
  const sum = (f: (l: { bytesOut: number; bytesIn: number }) => number) => [...links.values()].reduce((a, l) => a + f(l), 0);
  return {
    groups,
    wireBytes: () => ({ sent: sum((l) => l.bytesOut), recv: sum((l) => l.bytesIn) }),
    close: () => links.forEach((l) => l.close()),
  };
}
