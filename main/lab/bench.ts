/**
 * `bench`: run each parallel spec on the same seeded workload and write one
 * run folder per spec (run.json, schema paralab.run/1). Workloads here:
 *   prefill  B prompts of L tokens, time to first token (median of reps)
 *   decode   B sequences generating O tokens after an L-token prompt
 * With `ceiling`, `single` is also run cut at every sublayer (2 runs per
 * layer, as TP needs) and as one monolithic graph (no seams), and the decode roofline (weight bytes per step ÷ measured read
 * bandwidth) is recorded beside it.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { Engine } from '../engine/engine';
import type { RankInit } from '../engine/worker/protocol';
import { Rng } from '../engine/sample/rng';
import { measureReadBandwidth } from '../engine/runtime/bandwidth';
import { paramCount } from '../engine/model/types';
import type { LedgerSummary } from '../engine/comm/ledger';
import type { CommOp } from '../engine/comm/communicator';
import type { Expected } from '../engine/parallel/expected';

export type Workload = 'prefill' | 'decode';

export interface BenchOptions {
  model: string;
  specs: string[];
  workload: Workload;
  promptLen: number;
  outputLen: number;
  batch: number;
  reps: number;
  threadsPerRank?: number;
  ceiling: boolean;
  seed: number;
  outDir: string;
  onProgress?: (done: number, total: number, message: string) => void;
}

export interface RunMetrics {
  prefill_tok_s: number;
  output_tok_s: number;
  ttft_ms: Stat;
  tpot_ms: Stat;
}

export interface Stat {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface RunRecord {
  schema: 'paralab.run/1';
  id: string;
  created: string;
  label: string;
  model: Record<string, unknown>;
  parallel: Record<string, unknown>;
  device: Record<string, unknown>;
  workload: Record<string, unknown>;
  metrics: RunMetrics;
  ranks: Record<string, unknown>[];
  comm: CommRow[];
  correctness: { checked: boolean; note: string };
  roofline?: { read_gb_s: number; weight_bytes_per_step: number; decode_tok_s: number };
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const idx = (p / 100) * (s.length - 1);
  const lo = Math.floor(idx);
  const hi = Math.ceil(idx);
  return s[lo] + (s[hi] - s[lo]) * (idx - lo);
}

export function stat(xs: number[]): Stat {
  const mean = xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
  return { mean, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99) };
}

function prompts(B: number, L: number, vocab: number, seed: number): number[][] {
  const rng = new Rng(seed);
  // Skip the few special ids at the bottom of the vocabulary.
  return Array.from({ length: B }, () => Array.from({ length: L }, () => 4 + Math.floor(rng.next() * (vocab - 4))));
}

interface Variant {
  spec: string;
  label: string;
  cut?: RankInit['cut'];
}

export async function bench(o: BenchOptions): Promise<RunRecord[]> {
  const variants: Variant[] = o.specs.map((spec) => ({ spec, label: spec }));
  // The seams' cost: `single` cut at every sublayer (the ~2 session.run per
  // layer that TP needs) against the same model as one monolithic graph.
  if (o.ceiling) variants.push({ spec: 'single', label: 'single/sublayer-segments', cut: 'sublayer' }, { spec: 'single', label: 'single/monolithic', cut: 'none' });
  const records: RunRecord[] = [];
  for (const [i, v] of variants.entries()) {
    o.onProgress?.(i, variants.length, `${v.label}: starting`);
    records.push(await runOne(o, v));
    o.onProgress?.(i + 1, variants.length, `${v.label}: done`);
  }
  if (o.ceiling) {
    const threads = records[0]?.device.threads_per_rank as number;
    const bw = await measureReadBandwidth(threads);
    for (const r of records) {
      // Every weight is streamed once per decode step except the embedding
      // table, of which only B rows are read (weights are fp32 in memory).
      const m = r.model as { params: number; hidden: number; vocab: number };
      const bytes = 4 * (m.params - m.vocab * m.hidden);
      r.roofline = { read_gb_s: bw / 1e9, weight_bytes_per_step: bytes, decode_tok_s: (o.batch * bw) / bytes };
      writeRecord(o.outDir, r);
    }
  }
  return records;
}

async function runOne(o: BenchOptions, v: Variant): Promise<RunRecord> {
  const engine = await Engine.start({ model: o.model, parallel: v.spec, threadsPerRank: o.threadsPerRank, cut: v.cut, maxSeq: o.promptLen + o.outputLen + 8 });
  try {
    const c = engine.config;
    const work = prompts(o.batch, o.promptLen, c.vocabSize, o.seed);
    // Warm-up: first runs pay for allocator growth and weight pre-packing.
    await engine.generate(work, { maxNewTokens: 2, ignoreEos: true });
    engine.resetTimes();
    await engine.ledgers(true);
    const ttft: number[] = [];
    const tpot: number[] = [];
    let prefillTokS = 0;
    let outputTokS = 0;
    if (o.workload === 'prefill') {
      for (let r = 0; r < o.reps; r++) {
        const { timeline } = await engine.generate(work, { maxNewTokens: 1, ignoreEos: true });
        ttft.push(timeline.prefillMs);
      }
      prefillTokS = (o.batch * o.promptLen) / (percentile(ttft, 50) / 1000);
    } else {
      for (let r = 0; r < o.reps; r++) {
        const { timeline } = await engine.generate(work, { maxNewTokens: o.outputLen, ignoreEos: true });
        ttft.push(timeline.prefillMs);
        const t = timeline.tokenMs;
        for (let k = 1; k < t.length; k++) tpot.push(t[k] - t[k - 1]);
      }
      outputTokS = o.batch / (percentile(tpot, 50) / 1000);
      prefillTokS = (o.batch * o.promptLen) / (percentile(ttft, 50) / 1000);
    }
    const mem = engine.cluster.memory();
    const ledgers = await engine.ledgers();
    const record: RunRecord = {
      schema: 'paralab.run/1',
      id: `${new Date().toISOString().replace(/[:.]/g, '-')}-${v.label.replace(/[^a-z0-9=,]+/gi, '_')}`,
      created: new Date().toISOString(),
      label: v.label,
      model: {
        id: engine.modelId,
        arch: c.hfArchitecture,
        params: paramCount(c),
        layers: c.layers,
        hidden: c.hidden,
        vocab: c.vocabSize,
        heads: c.heads,
        kv_heads: c.kvHeads,
        experts: c.moe?.experts ?? 0,
        top_k: c.moe?.topK ?? 0,
        dtype: c.dtype,
      },
      parallel: { spec: v.spec, world: engine.spec.world, dp: engine.spec.dp, pp: engine.spec.pp, tp: engine.spec.tp, sp: engine.spec.sp, ep: engine.spec.ep, segments: v.cut ?? 'collectives' },
      device: { kind: engine.device, threads_per_rank: engine.threadsPerRank, host_cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), memory_bytes: os.totalmem(), node: process.version },
      workload: { kind: o.workload, prompt_len: o.promptLen, output_len: o.workload === 'decode' ? o.outputLen : 1, batch: o.batch, reps: o.reps, seed: o.seed },
      metrics: { prefill_tok_s: prefillTokS, output_tok_s: outputTokS, ttft_ms: stat(ttft), tpot_ms: stat(tpot) },
      ranks: engine.cluster.ready.map((r, i) => ({
        rank: i,
        pid: r.pid,
        layers: r.layers,
        segments: r.segments,
        weight_bytes: r.weightBytes,
        rss_peak_bytes: mem[i].rssPeak,
        load_ms: r.loadMs,
        time: { compute_ms: engine.rankTimes[i].computeMs, comm_ms: engine.rankTimes[i].commMs, bubble_ms: engine.rankTimes[i].bubbleMs },
      })),
      comm: commRows(ledgers, engine.expectedComm),
      correctness: { checked: false, note: 'single is the reference; run `lab verify` for parallel specs' },
    };
    writeRecord(o.outDir, record);
    return record;
  } finally {
    await engine.close();
  }
}

export interface CommRow {
  rank: number;
  op: string;
  count: number;
  bytes_sent: number;
  bytes_recv: number;
  expected_count: number;
  expected_bytes_sent: number;
  ms: number;
  wait_ms: number;
  gb_s: number;
}

/** Measured ledger beside the closed form, per rank and op. */
export function commRows(ledgers: (LedgerSummary | null)[], expected: Expected[]): CommRow[] {
  const rows: CommRow[] = [];
  ledgers.forEach((l, rank) => {
    const ops = new Set([...Object.keys(l ?? {}), ...Object.keys(expected[rank] ?? {})]) as Set<CommOp>;
    for (const op of ops) {
      const m = l?.[op];
      const e = expected[rank]?.[op];
      rows.push({
        rank,
        op,
        count: m?.count ?? 0,
        bytes_sent: m?.bytesSent ?? 0,
        bytes_recv: m?.bytesRecv ?? 0,
        expected_count: e?.count ?? 0,
        expected_bytes_sent: e?.bytesSent ?? 0,
        ms: m?.ms ?? 0,
        wait_ms: m?.waitMs ?? 0,
        gb_s: m && m.ms - m.waitMs > 0 ? (m.bytesSent + m.bytesRecv) / ((m.ms - m.waitMs) * 1e6) : 0,
      });
    }
  });
  return rows;
}

/** Atomic: a crash never leaves a half-written run.json. */
export function writeRecord(outDir: string, r: RunRecord): string {
  const dir = path.join(outDir, r.id);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'run.json');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(r, null, 2));
  renameSync(tmp, file);
  return dir;
}
