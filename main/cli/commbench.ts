/**
 * `lab commbench`: latency and bandwidth of every collective, in the style of
 * nccl-tests, on real rank processes over each transport.
 *
 *   npm run --silent lab -- commbench [--ranks 2,4] [--transport shm,tcp] [--min 4K] [--max 64M]
 *                                     [--ops all_reduce,…] [--iters N] [--slot-bytes 4M] [--spin-us 50]
 *                                     [--unpinned] [--timeout 60] [--json]
 *
 * For each transport × rank count it prepares a world with one group of all
 * ranks, forks the ranks (main/engine/comm/bench-rank.ts), and for sizes
 * min … max (×4 steps) reports the median time per call (the slowest rank's
 * time for each call, then the median over calls), algbw = size / time and
 * busbw = algbw × the nccl-tests bus factor: all-reduce 2(n−1)/n,
 * reduce-scatter, all-gather and all-to-all (n−1)/n, broadcast and send/recv 1.
 * The first call of every row is checked against a locally computed result.
 * Ranks are pinned one per core when they fit (--unpinned: leave it to the
 * scheduler), as nccl-tests binds one process per GPU.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parse, intOpt, UsageError } from './args';
import { BENCH_OPS } from '../engine/comm/bench-rank';
import type { BenchJob, BenchOp, BenchReply, BenchRow } from '../engine/comm/bench-rank';
import { destroyWorld, prepareWorld } from '../engine/comm/world';
import type { Transport } from '../engine/comm/world';
import { formatBytes } from './format';

const RANK_ENTRY = path.join(__dirname, '../engine/comm/bench-rank.ts');

export interface CommbenchOptions {
  ranks: number[];
  transports: Transport[];
  minBytes: number;
  maxBytes: number;
  ops: BenchOp[];
  iters: number | null;
  slotBytes?: number;
  spinUs?: number;
  /** pin rank r to cpu r mod cores (when ranks ≤ cores) */
  pin: boolean;
  timeoutMs: number;
}

export interface CommbenchResult {
  transport: string;
  ranks: number;
  op: BenchOp;
  bytes: number;
  time_us: number;
  algbw_gbs: number;
  busbw_gbs: number;
  iters: number;
  check: 'ok' | string;
}

export function busFactor(op: BenchOp, n: number): number {
  if (op === 'all_reduce') return (2 * (n - 1)) / n;
  if (op === 'broadcast' || op === 'sendrecv') return 1;
  return (n - 1) / n;
}

export function sizesBetween(min: number, max: number): number[] {
  const out: number[] = [];
  for (let s = min; s <= max; s *= 4) out.push(s);
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One transport × rank count: fork the ranks, collect their rows. */
async function runConfig(transport: Transport, n: number, o: CommbenchOptions): Promise<{ transport: string; replies: BenchRow[][] }> {
  const setup = await prepareWorld({ world: n, transport, groups: [{ name: 'all', ranks: Array.from({ length: n }, (_, r) => r) }], slotBytes: o.slotBytes, spinUs: o.spinUs, timeoutMs: o.timeoutMs });
  const children: ChildProcess[] = [];
  try {
    const replies = await Promise.all(
      Array.from({ length: n }, (_, rank) => {
        const child = fork(RANK_ENTRY, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
        children.push(child);
        const cores = os.availableParallelism();
        const job: BenchJob = { setup, rank, ops: o.ops, sizes: sizesBetween(o.minBytes, o.maxBytes), iters: o.iters, pin: o.pin && n <= cores ? [rank % cores] : null };
        child.send(job);
        return new Promise<BenchRow[]>((resolve, reject) => {
          child.once('message', (m: BenchReply) => ('error' in m ? reject(new Error(`${setup.transport}, ${n} ranks: rank ${rank}: ${m.error}`)) : resolve(m.rows)));
          // 'close' waits for the IPC pipe to drain: on 'exit' the rank's report may still be unread
          child.once('close', (code, sig) => reject(new Error(`${setup.transport}, ${n} ranks: rank ${rank} exited (${sig ?? code}) before reporting`)));
        });
      }),
    );
    return { transport: setup.transport, replies };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    destroyWorld(setup);
  }
}

function summarise(transport: string, n: number, replies: BenchRow[][]): CommbenchResult[] {
  return replies[0].map((row, i) => {
    const all = replies.map((rows) => rows[i]);
    const us = row.op === 'sendrecv' ? row.us : row.us.map((_, k) => Math.max(...all.map((r) => r.us[k])));
    const time = median(us);
    const algbw = row.bytes / (time * 1e-6) / 1e9;
    const bad = all.find((r) => !r.ok);
    return { transport, ranks: n, op: row.op, bytes: row.bytes, time_us: time, algbw_gbs: algbw, busbw_gbs: algbw * busFactor(row.op, n), iters: us.length, check: bad ? (bad.detail ?? 'mismatch') : 'ok' };
  });
}

export async function commbench(o: CommbenchOptions, onConfig?: (rows: CommbenchResult[]) => void): Promise<CommbenchResult[]> {
  const out: CommbenchResult[] = [];
  for (const transport of o.transports) {
    for (const n of o.ranks) {
      const { transport: used, replies } = await runConfig(transport, n, o);
      const rows = summarise(used, n, replies);
      onConfig?.(rows);
      out.push(...rows);
    }
  }
  return out;
}

// ── command line ──────────────────────────────────────────────────────────

export function parseSize(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const m = /^(\d+)\s*([KMG]?)(i?B)?$/i.exec(v.trim());
  if (!m) throw new UsageError(`--${name} must be a size like 4096, 4K or 64M; got '${v}'`);
  const bytes = Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
  if (bytes < 4 || bytes % 4) throw new UsageError(`--${name} must be a positive multiple of 4 bytes (float32); got '${v}'`);
  return bytes;
}

function listOpt<T extends string>(name: string, v: string | undefined, allowed: readonly T[], dflt: T[]): T[] {
  if (v === undefined) return dflt;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((s) => !allowed.includes(s as T));
  if (bad.length || items.length === 0) throw new UsageError(`--${name} takes a comma-separated list of ${allowed.join(', ')}; got '${v}'`);
  return items as T[];
}

function table(rows: CommbenchResult[]): string {
  const head = `# ${rows[0].transport}, ${rows[0].ranks} ranks (${os.availableParallelism()} cores)\n` + `${'op'.padEnd(15)}${'size'.padStart(10)}${'time(us)'.padStart(12)}${'algbw(GB/s)'.padStart(13)}${'busbw(GB/s)'.padStart(13)}  check`;
  const lines = rows.map(
    (r) => `${r.op.padEnd(15)}${formatBytes(r.bytes).padStart(10)}${r.time_us.toFixed(r.time_us < 100 ? 2 : 1).padStart(12)}${r.algbw_gbs.toFixed(2).padStart(13)}${r.busbw_gbs.toFixed(2).padStart(13)}  ${r.check}`,
  );
  return [head, ...lines].join('\n');
}

export async function commbenchCommand(argv: string[]): Promise<void> {
  const { values: v } = parse('commbench', argv, {
    ranks: { type: 'string' },
    transport: { type: 'string' },
    min: { type: 'string' },
    max: { type: 'string' },
    ops: { type: 'string' },
    iters: { type: 'string' },
    'slot-bytes': { type: 'string' },
    'spin-us': { type: 'string' },
    unpinned: { type: 'boolean' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  });
  const ranks = (v.ranks ?? '2,4').split(',').map((s) => intOpt('ranks', s.trim(), 2, 2));
  const o: CommbenchOptions = {
    ranks,
    transports: listOpt('transport', v.transport, ['shm', 'tcp', 'unix', 'auto'] as const, ['shm', 'tcp']),
    minBytes: parseSize('min', v.min, 4096),
    maxBytes: parseSize('max', v.max, 64 * 2 ** 20),
    ops: listOpt('ops', v.ops, BENCH_OPS, [...BENCH_OPS]),
    iters: v.iters === undefined ? null : intOpt('iters', v.iters, 20, 1),
    slotBytes: v['slot-bytes'] === undefined ? undefined : parseSize('slot-bytes', v['slot-bytes'], 0),
    spinUs: v['spin-us'] === undefined ? undefined : intOpt('spin-us', v['spin-us'], 50, 0),
    pin: v.unpinned !== true,
    timeoutMs: 1000 * intOpt('timeout', v.timeout, 60, 1),
  };
  if (o.minBytes > o.maxBytes) throw new UsageError(`--min (${o.minBytes} B) is larger than --max (${o.maxBytes} B)`);
  const results = await commbench(o, v.json ? undefined : (rows) => process.stdout.write(table(rows) + '\n\n'));
  const failed = results.filter((r) => r.check !== 'ok');
  if (v.json) process.stdout.write(JSON.stringify({ cores: os.availableParallelism(), results }) + '\n');
  if (failed.length) throw new Error(`${failed.length} result check(s) failed, first: ${failed[0].transport} ${failed[0].ranks} ranks ${failed[0].op} ${formatBytes(failed[0].bytes)}: ${failed[0].check}`);
}
