/**
 * Loads the shared-memory addon (native/shm.c, built by scripts/build-native.cjs
 * into build/Release/paralab_shm.node) when it exists and works here; null
 * otherwise, and the data plane falls back to sockets ('auto' → unix).
 *
 * Looked for, in order: $PARALAB_SHM_ADDON; the repo root seen from this
 * source file (main/engine/comm) or from the bundled main (out/main); the
 * packaged app's resources (app.asar.unpacked); the working directory.
 * PARALAB_SHM=0 turns it off (to exercise the socket fallback). The addon
 * never creates an external ArrayBuffer (the mapping stays behind a handle;
 * JavaScript passes its own arrays, copied in and out), so it works where
 * V8's sandbox forbids them: Electron, whose ranks run as ELECTRON_RUN_AS_NODE.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

/** An open group segment: opaque, owned by the addon (never an ArrayBuffer over the mapping). */
export type ShmHandle = { readonly __shmHandle: unique symbol };

/** What a collective call returns (native/shm.c). */
export const SHM = { DONE: 0, BLOCKED: 1, NEED_OUT: 2, PEER_GONE: 3, TIMEOUT: 4, BAD_LENGTH: 5, BAD_OUT: 6, CLOSED: 7 } as const;
export type ShmStatus = (typeof SHM)[keyof typeof SHM];
/** io of a collective: [ms, waitMs, floats needed, peer, 0, 0, 0, 0, then one length / count per rank] */
export const IO_HEAD = 8;

export interface ShmAddon {
  /** host: make the segment file (bytes long) and write its header words */
  create(file: string, bytes: number, header: Int32Array): void;
  /** params: [slotBytes, chunkBytes, chunks, spinUs, blockMs, timeoutMs] */
  open(file: string, n: number, me: number, params: Float64Array): ShmHandle;
  header(h: ShmHandle, out: Int32Array): void;
  /** record this rank's pid and state, count it in; true for the last of the n ranks */
  start(h: ShmHandle): boolean;
  close(h: ShmHandle): void;
  markClosed(h: ShmHandle, failed: boolean): void;
  alive(h: ShmHandle, rank: number): boolean;
  allReduce(h: ShmHandle, io: Float64Array, buf: Float32Array): ShmStatus;
  reduceScatter(h: ShmHandle, io: Float64Array, buf: Float32Array, counts: Int32Array, out: Float32Array): ShmStatus;
  allGather(h: ShmHandle, io: Float64Array, chunk: Float32Array, out: Float32Array | null): ShmStatus;
  allToAllV(h: ShmHandle, io: Float64Array, send: Float32Array, sendCounts: Int32Array, out: Float32Array | null): ShmStatus;
  broadcast(h: ShmHandle, io: Float64Array, buf: Float32Array, root: number): ShmStatus;
  barrier(h: ShmHandle, io: Float64Array): ShmStatus;
  /** give up the collective in progress (an exception between two calls): this rank leaves the group */
  abort(h: ShmHandle): void;
  /** after BLOCKED: sleep up to 50 ms off the event loop on the awaited word, then repeat the call */
  waitAsync(h: ShmHandle): Promise<0 | 1 | 2>;
  load(h: ShmHandle, word: number): number;
  store(h: ShmHandle, word: number, value: number): void;
  ring(h: ShmHandle, word: number, sleepWord: number, force: boolean): void;
  boxWrite(h: ShmHandle, a: number, b: number, k: number, src: Float32Array, offset: number, floats: number): void;
  boxRead(h: ShmHandle, a: number, b: number, k: number, dst: Float32Array, offset: number, floats: number): void;
  /** 0 woken, 1 the word no longer held `expected`, 2 timed out */
  bellWaitAsync(h: ShmHandle, word: number, expected: number, ms: number): Promise<0 | 1 | 2>;
  /** dst = srcs[0] + srcs[1] + … (in that order); also written to dst2 when given */
  reduceInto(dst: Float32Array, srcs: Float32Array[], dst2?: Float32Array): void;
  /** pin every thread of this process to `cpus` (later threads inherit it); returns threads pinned */
  pinProcess(cpus: number[]): number;
}

const FILE = path.join('build', 'Release', 'paralab_shm.node');

function candidates(): string[] {
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  return [
    process.env.PARALAB_SHM_ADDON,
    path.resolve(__dirname, '../../..', FILE),
    path.resolve(__dirname, '../..', FILE),
    resources && path.join(resources, 'app.asar.unpacked', FILE),
    resources && path.join(resources, FILE),
    path.resolve(process.cwd(), FILE),
  ].filter((p): p is string => !!p);
}

let cached: ShmAddon | null | undefined;

export function shmAddon(): ShmAddon | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.platform !== 'linux' || process.env.PARALAB_SHM === '0') return cached;
  const file = candidates().find((p) => existsSync(p));
  if (!file) return cached;
  try {
    const addon = require(file) as Partial<ShmAddon>;
    // an addon built before the collectives moved into it lacks them: treat it as absent
    if (typeof addon.allReduce === 'function' && typeof addon.open === 'function') cached = addon as ShmAddon;
  } catch {
    cached = null;
  }
  return cached;
}

/**
 * Pin this process (all its threads, and those it starts later) to `cpus`.
 * False where the addon is unavailable. Ranks that spin-wait for each other
 * need their own core: on a small machine the scheduler otherwise stacks two
 * ranks on one core now and then, and each synchronisation then costs a
 * context switch (measured 2–4× slower small all-reduces on 2 cores).
 */
export function pinToCpus(cpus: number[]): boolean {
  const addon = shmAddon();
  return !!addon && addon.pinProcess(cpus) > 0;
}
