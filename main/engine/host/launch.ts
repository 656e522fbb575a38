/**
 * Pure: what each rank process is told at start — from the mesh (groups,
 * links), the roles (shards), the placement (device ids) and the engine's
 * options (threads, context, segment cut) to one RankInit per rank. The
 * data plane (shared memory or sockets) is set up by the caller, in between.
 */
import type { DeviceKind } from '../types';
import type { Mesh } from '../parallel/mesh';
import type { RankRole } from '../parallel/plan';
import type { WorldSetup } from '../comm/world';
import type { RankInit } from '../rank/protocol';
import type { Placement } from './placement';

export interface LaunchOptions {
  modelDir: string;
  modelId: string;
  device: DeviceKind;
  threads: number;
  /** cores of this machine (pinning needs one per thread of every rank) */
  cores: number;
  /** positions one sequence may fill */
  maxSeq: number;
  cut: RankInit['cut'];
  /** spin-waiting intra-op threads (PARALAB_ORT_SPIN=1) */
  spin: boolean;
  /** some ranks are on other machines (no pinning: their cores are not ours) */
  remote: boolean;
}

/** Threads per rank when not given: the cores shared out evenly, at least one. */
export function defaultThreads(cores: number, world: number): number {
  return Math.max(1, Math.floor(cores / world));
}

export function rankInits(mesh: Mesh, roles: RankRole[], placement: Placement, dataPlane: WorldSetup | null, o: LaunchOptions): RankInit[] {
  const { spec } = mesh;
  return roles.map((r) => ({
    rank: r.rank,
    world: spec.world,
    modelDir: o.modelDir,
    modelId: o.modelId,
    plan: r.plan,
    device: o.device,
    ...(placement.deviceIds[r.rank] !== null ? { deviceId: placement.deviceIds[r.rank]! } : {}),
    threads: o.threads,
    // Spinning intra-op threads looked free but measured 10× slower decode
    // with per-sublayer sessions: every session owns a thread pool, and idle
    // pools spinning on 2 cores starve the busy one (docs/PERFORMANCE.md).
    spin: o.spin,
    pin: !o.remote && spec.world > 1 && spec.world * o.threads <= o.cores,
    maxSeq: o.maxSeq,
    cut: o.cut,
    sampler: r.sampler,
    micro: spec.pp > 1 ? spec.micro : 1,
    dataPlane,
    links: mesh.links(r.rank),
  }));
}

/** The most threads one rank may ask for: twice the cores (each is an onnxruntime worker with its own stack and arena). */
export const maxThreadsPerRank = (cores: number) => 2 * cores;

/** The longest step bound or heartbeat silence a user may set: a day. */
export const MAX_TIMEOUT_MS = 86_400_000;

/**
 * Refuse, before anything starts, what this machine cannot run (the world's
 * bound, MAX_WORLD ranks, is the spec parser's): more threads per rank than
 * twice its cores (each thread is an onnxruntime worker with its own stack
 * and arena), timeouts that are not positive.
 */
export function checkEngineBounds(o: { threadsPerRank?: number; timeoutMs?: number; heartbeatTimeoutMs?: number }, cores: number): void {
  const bad = (code: string, message: string) => {
    throw Object.assign(new Error(message), { code });
  };
  const t = o.threadsPerRank;
  if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > maxThreadsPerRank(cores))) {
    bad('bad_request', `threads per rank must be an integer from 1 to ${maxThreadsPerRank(cores)} (twice this machine's ${cores} cores), got ${t}; leave it out for the default`);
  }
  for (const [k, v] of [['timeout', o.timeoutMs], ['heartbeat timeout', o.heartbeatTimeoutMs]] as const) {
    if (v !== undefined && (!Number.isFinite(v) || v <= 0 || v > MAX_TIMEOUT_MS)) bad('bad_request', `the ${k} must be a positive number of milliseconds up to a day, got ${v}`);
  }
}
