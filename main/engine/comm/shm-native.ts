/**
 * Loads the shared-memory addon (native/shm.c, built by scripts/build-native.cjs
 * into build/Release/paralab_shm.node) when it exists and works here; null
 * otherwise, and the data plane falls back to sockets ('auto' → unix).
 *
 * Looked for, in order: $PARALAB_SHM_ADDON; the repo root seen from this
 * source file (main/engine/comm) or from the bundled main (out/main); the
 * packaged app's resources (app.asar.unpacked); the working directory.
 * PARALAB_SHM=0 turns it off (to exercise the socket fallback). It is also
 * null where V8's sandbox forbids external ArrayBuffers (Electron builds).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface ShmAddon {
  map(file: string, bytes: number, create: boolean): ArrayBuffer;
  unmap(ab: ArrayBuffer): void;
  externalBuffers(): boolean;
  /** 0 woken, 1 the word no longer held `expected`, 2 timed out */
  futexWait(ab: ArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): 0 | 1 | 2;
  futexWaitAsync(ab: ArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): Promise<0 | 1 | 2>;
  futexWake(ab: ArrayBuffer, byteOffset: number, count: number): number;
  addInto(dst: Float32Array, src: Float32Array): void;
  /** dst = srcs[0] + srcs[1] + … (in that order); also written to dst2 when given */
  reduceInto(dst: Float32Array, srcs: Float32Array[], dst2?: Float32Array): void;
  copy(dst: ArrayBufferView, src: ArrayBufferView): void;
  /** sched_yield(): let a peer that shares this core run while we spin for it */
  yieldCpu(): void;
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
    const addon = require(file) as ShmAddon;
    if (addon.externalBuffers()) cached = addon;
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
