/**
 * Run records (`run.json`, schema paralab.run/1) and their folders.
 *
 * One folder per run under a runs directory: `run.json` and `trace.json`.
 * A folder is written whole or not at all: both files go into a hidden
 * temporary folder beside it, which is then renamed into place (rename is
 * atomic on one file system), so a crash never leaves a half record and a
 * reader never sees one. The files and the folder are fsync'ed before the
 * rename (else a power cut can leave the renamed folder with empty files),
 * and a temporary folder a crash left behind is swept by sweepTempFolders. Records read back are checked against the JSON
 * Schema in schema/run.schema.json (ajv), so a report never silently draws a
 * broken or foreign file.
 *
 * Also here: the pure pieces a record is assembled from (comm rows with the
 * closed form beside the measurement, per-rank time split, host facts).
 */
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { syncDir, writeDurable } from './durable';
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { RunRecord, RunSummary, TraceEvent } from './contract';
import runSchema from './schema/run.schema.json';

export const RUN_SCHEMA_ID = 'paralab.run/1';

/** The runs directory: PARALAB_RUNS, else ~/.local/share/paralab/runs (the web host, the app and the CLI share it). */
export function defaultRunsDir(): string {
  return process.env['PARALAB_RUNS'] || path.join(os.homedir(), '.local', 'share', 'paralab', 'runs');
}

// ---------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------

let validator: ValidateFunction | null = null;

export function runValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    validator = ajv.compile(runSchema);
  }
  return validator;
}

/** Problems with a record as one line each (`/metrics/ttft_ms: must have required property 'p50'`); empty when valid. */
export function checkRecord(r: unknown): string[] {
  const v = runValidator();
  if (v(r)) return [];
  return (v.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
}

// ---------------------------------------------------------------------------
// Folders
// ---------------------------------------------------------------------------

/** A run id that is also a safe folder name. */
export function runId(label: string, date = new Date()): string {
  const stamp = date.toISOString().replace(/[:.]/g, '-');
  const rand = Math.random().toString(36).slice(2, 6);
  return `${stamp}-${label.replace(/[^a-z0-9=,]+/gi, '_').replace(/,/g, '+')}-${rand}`;
}

function assertSafeId(id: string): void {
  if (!id || id.startsWith('.') || /[/\\]/.test(id) || id.includes('..')) throw Object.assign(new Error(`'${id}' is not a run id`), { code: 'bad_request' });
}

/** Atomic: run.json and trace.json appear together, or not at all. Returns the folder. */
export function writeRunFolder(runsDir: string, record: RunRecord, trace: TraceEvent[]): string {
  assertSafeId(record.id);
  mkdirSync(runsDir, { recursive: true });
  const dir = path.join(runsDir, record.id);
  const tmp = path.join(runsDir, `.${record.id}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    writeDurable(path.join(tmp, 'run.json'), JSON.stringify(record, null, 2) + '\n');
    writeDurable(path.join(tmp, 'trace.json'), JSON.stringify(trace) + '\n');
    syncDir(tmp);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    syncDir(runsDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

/** Rewrite run.json of an existing folder (tmp + rename). */
export function rewriteRecord(dir: string, record: RunRecord): void {
  const file = path.join(dir, 'run.json');
  const tmp = `${file}.${process.pid}.tmp`;
  writeDurable(tmp, JSON.stringify(record, null, 2) + '\n');
  renameSync(tmp, file);
  syncDir(dir);
}

/** Read and validate a run folder's record (`dir` is the folder, or run.json itself). */
export function readRunFolder(dir: string): RunRecord {
  const file = dir.endsWith('.json') ? dir : path.join(dir, 'run.json');
  if (!existsSync(file)) throw Object.assign(new Error(`${file} not found: give a run folder written by \`lab bench\``), { code: 'not_found' });
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message})`);
  }
  const problems = checkRecord(data);
  if (problems.length > 0) throw new Error(`${file} does not match schema ${RUN_SCHEMA_ID}: ${problems.slice(0, 3).join('; ')}`);
  return data as RunRecord;
}

export function readTrace(dir: string): TraceEvent[] {
  const file = path.join(dir, 'trace.json');
  if (!existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as TraceEvent[];
}

/** Run folders in a runs directory, newest first (folders without a readable run.json are skipped). */
export function listRunFolders(runsDir: string): string[] {
  if (!existsSync(runsDir)) return [];
  return readdirSync(runsDir)
    .filter((n) => !n.startsWith('.') && existsSync(path.join(runsDir, n, 'run.json')))
    .map((n) => path.join(runsDir, n))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
}

/** A runs-list line from a record. */
export function summarize(r: RunRecord): RunSummary {
  const c = r.correctness;
  return {
    id: r.id,
    created: r.created,
    label: r.label,
    model: r.model.id,
    spec: r.parallel.spec,
    world: r.parallel.world,
    workload: r.workload.kind,
    device: r.device.kind,
    output_tok_s: r.metrics.output_tok_s,
    prefill_tok_s: r.metrics.prefill_tok_s,
    ttft_p50_ms: r.metrics.ttft_ms.p50,
    tpot_p50_ms: r.metrics.tpot_ms.p50,
    correctness: !c.checked ? 'unchecked' : c['passed'] === false || c.tokens_equal === false ? 'fail' : 'pass',
  };
}

// ---------------------------------------------------------------------------
// Pieces of a record
// ---------------------------------------------------------------------------

/** Versions of the runtime pieces a result depends on. */
export function runtimeVersions(): Record<string, string> {
  const require = createRequire(__filename);
  // Through each package's resolved entry: `exports` maps may hide package.json.
  const version = (pkg: string, from: NodeJS.Require = require): string => {
    try {
      let dir = path.dirname(from.resolve(pkg));
      while (dir !== path.dirname(dir)) {
        const file = path.join(dir, 'package.json');
        if (existsSync(file)) {
          const j = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
          if (j.name === pkg && j.version) return j.version;
        }
        dir = path.dirname(dir);
      }
    } catch {
      // not installed here
    }
    return 'unknown';
  };
  let fromOrt: NodeJS.Require = require;
  try {
    fromOrt = createRequire(require.resolve('onnxruntime-node'));
  } catch {
    // not installed: both versions read 'unknown'
  }
  return { node: process.version, onnxruntime_node: version('onnxruntime-node'), onnxruntime_common: version('onnxruntime-common', fromOrt), v8: process.versions.v8 };
}

/** The host the ranks ran on. */
export function hostFacts(): { host_cpu: string; cores: number; memory_bytes: number; platform: string; hostname: string; load_avg_1m: number } {
  return {
    // other work on the host skews every number: recorded so a reader can tell a quiet machine from a busy one
    load_avg_1m: Math.round(os.loadavg()[0] * 100) / 100,
    host_cpu: os.cpus()[0]?.model?.trim() || 'unknown',
    cores: os.availableParallelism(),
    memory_bytes: os.totalmem(),
    platform: `${process.platform}-${process.arch}`,
    hostname: os.hostname(),
  };
}

export interface LedgerOp {
  count: number;
  bytesSent: number;
  bytesRecv: number;
  ms: number;
  waitMs: number;
}

export type CommRow = {
  rank: number;
  op: string;
  count: number;
  bytes_sent: number;
  bytes_recv: number;
  expected_count: number;
  expected_bytes_sent: number;
  expected_bytes_recv: number;
  ms: number;
  wait_ms: number;
  /** (sent + received) ÷ (ms − wait_ms): the transfer rate once every peer had arrived */
  gb_s: number;
};

/** Measured ledger beside the closed form, per rank and op (ops only one side knows get zeros on the other). */
export function commRows(ledgers: (Partial<Record<string, LedgerOp>> | null)[], expected: Partial<Record<string, Partial<Pick<LedgerOp, 'count' | 'bytesSent' | 'bytesRecv'>>>>[]): CommRow[] {
  const rows: CommRow[] = [];
  const n = Math.max(ledgers.length, expected.length);
  for (let rank = 0; rank < n; rank++) {
    const l = ledgers[rank] ?? {};
    const x = expected[rank] ?? {};
    const ops = [...new Set([...Object.keys(l), ...Object.keys(x)])].sort();
    for (const op of ops) {
      const m = l[op];
      const e = x[op];
      const transferMs = m ? m.ms - m.waitMs : 0;
      rows.push({
        rank,
        op,
        count: m?.count ?? 0,
        bytes_sent: m?.bytesSent ?? 0,
        bytes_recv: m?.bytesRecv ?? 0,
        expected_count: e?.count ?? 0,
        expected_bytes_sent: e?.bytesSent ?? 0,
        expected_bytes_recv: e?.bytesRecv ?? 0,
        ms: m?.ms ?? 0,
        wait_ms: m?.waitMs ?? 0,
        gb_s: m && transferMs > 0 ? (m.bytesSent + m.bytesRecv) / (transferMs * 1e6) : 0,
      });
    }
  }
  return rows;
}

export interface RankTimeRow {
  steps: number;
  compute_ms: number;
  /** time inside collectives and sends minus the arrival wait: moving and reducing bytes */
  comm_ms: number;
  /** waiting inside collectives for the last peer to arrive (arrival skew), from the ledger */
  wait_ms: number;
  /** a pipeline stage blocked on its previous stage's activations */
  bubble_ms: number;
}

/**
 * A rank's time split. The rank's comm time includes the arrival wait of its
 * collectives; the ledger measures that wait separately, so it is moved out
 * into wait_ms. A pipeline recv's wait is already the bubble (the rank counts
 * it there, outside comm), so only the receive wait beyond the bubble — ring
 * passes, the SP logits hand-off — joins wait_ms.
 */
export function rankTime(t: { steps: number; computeMs: number; commMs: number; bubbleMs: number }, ledger: Partial<Record<string, LedgerOp>> | null): RankTimeRow {
  let wait = 0;
  let recvWait = 0;
  for (const [op, e] of Object.entries(ledger ?? {})) {
    if (!e) continue;
    if (op === 'recv') recvWait += e.waitMs;
    else wait += e.waitMs;
  }
  // Other receives (a ring pass, SP logits) wait on a late peer inside comm time.
  wait += Math.max(0, recvWait - t.bubbleMs);
  wait = Math.min(wait, t.commMs);
  return { steps: t.steps, compute_ms: t.computeMs, comm_ms: Math.max(0, t.commMs - wait), wait_ms: wait, bubble_ms: t.bubbleMs };
}
