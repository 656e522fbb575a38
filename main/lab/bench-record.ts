/**
 * One benchmark run as a run record (run.json, schema paralab.run/1) and its
 * trace (trace.json): the model, the mesh, the device, the workload, vLLM's
 * metrics, per-rank memory and time, the comm ledger beside the closed form,
 * the correctness check and the expert load — from what the engine's Meter
 * and the ranks' ledgers measured.
 */
import type { Engine, RankTime } from '../engine/host/engine';
import type { RankSpan } from '../engine/rank/protocol';
import { balancedness as loadBalancedness } from '../engine/parallel/ep/load';
import type { ExpertLoad } from '../engine/parallel/ep/load';
import { paramCount } from '../engine/model/types';
import type { ModelConfig } from '../engine/model/types';
import { formatSpec } from '../engine/parallel/spec';
import type { RunRecord, TraceEvent } from './contract';
import type { Expected, LedgerSummary } from '../engine/comm/ledger';
import { commRows, hostFacts, rankTime, runId, runtimeVersions } from './record';
import { workloadActivationPeak, type ShardShape } from './memory';
import { buildTrace } from './trace';
import { requestSpans, stepSpans } from './bench-measure';
import type { Measured } from './bench-measure';
import { measuredOutput } from './bench-options';
import type { BenchOptions } from './bench-options';

/** What the engine measured over the measured reps, taken before the correctness check adds its own steps. */
export interface Snapshot {
  ledgers: (LedgerSummary | null)[];
  rankTimes: RankTime[];
  expected: Expected[];
  spans: RankSpan[][];
  expertLoad: ExpertLoad | null;
  kvBytes: number[];
  rssPeak: number[];
}

/** Take the snapshot (the ledgers are asked of the ranks). */
export async function snapshot(engine: Engine): Promise<Snapshot> {
  const mem = engine.cluster.memory();
  return {
    ledgers: await engine.ledgers(),
    rankTimes: engine.meter.rankTimes.map((t) => ({ ...t })),
    expected: structuredClone(engine.meter.expected),
    spans: engine.meter.drainSpans(),
    expertLoad: engine.meter.expertLoad(),
    kvBytes: engine.meter.kvBytes(),
    rssPeak: mem.map((m) => m.rssPeak),
  };
}

/** max ÷ mean of the tokens routed to each expert of one layer (1 = perfectly balanced); 0 for a layer that routed nothing (JSON has no NaN). */
export function balancedness(perExpert: number[]): number {
  const b = loadBalancedness(perExpert);
  return Number.isNaN(b) ? 0 : b;
}

function shardShape(c: ModelConfig, engine: Engine, rank: number, layers: [number, number]): ShardShape {
  const ffn = c.moe ? c.moe.expertFfn * c.moe.topK + c.moe.sharedExpertFfn : c.ffn;
  const spec = engine.spec;
  return { layers, hidden: c.hidden, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, ffn, vocab: c.vocabSize, tp: spec.tp, head: engine.roles[rank]?.plan.head ?? false, sp: spec.sp, megatronSp: spec.spImpl === 'megatron' && spec.tp > 1 };
}

/** Per rank: where it sits, what it holds (measured where the engine measures, accounted from shapes otherwise), where its time went. */
function rankRows(o: BenchOptions, engine: Engine, snap: Snapshot): RunRecord['ranks'] {
  const c = engine.config;
  return engine.cluster.ready.map((r, i) => {
    const shape = shardShape(c, engine, i, r.layers);
    const seqs = o.workload === 'serving' ? Math.ceil(Math.min(o.requests ?? 1, o.maxBatch ?? o.requests ?? 1) / engine.spec.dp) : Math.ceil(o.batch / engine.spec.dp);
    const outLen = measuredOutput(o);
    return {
      rank: i,
      pid: r.pid,
      coord: engine.mesh.place(i).coord,
      layers: r.layers,
      segments: r.segments,
      load_ms: r.loadMs,
      memory: {
        weights_bytes: r.weightBytes,
        kv_cache_bytes: snap.kvBytes[i],
        kv_cache_source: 'engine',
        activation_peak_bytes: workloadActivationPeak(shape, seqs, o.promptLen, outLen),
        rss_peak_bytes: snap.rssPeak[i] ?? 0,
      },
      time: rankTime(snap.rankTimes[i], snap.ledgers[i]),
    };
  });
}

/** What a reader of the ratios must know about this spec on this workload (one line each). */
export function workloadNotes(workload: BenchOptions['workload'], spec: Pick<Engine['spec'], 'sp' | 'spImpl'>): string[] {
  if (workload === 'decode' && spec.sp > 1 && spec.spImpl !== 'megatron') {
    return [`sp=${spec.sp} on decode: a decode step has one token per sequence, which sequence parallelism cannot split, so each step pays SP's collectives for no split work; SP pays off on long prefills (--workload prefill)`];
  }
  return [];
}

/** The run record and its trace. */
export function buildRecord(o: BenchOptions, label: string, cut: string | undefined, engine: Engine, measured: Measured, snap: Snapshot, correctness: RunRecord['correctness']): { record: RunRecord; trace: TraceEvent[] } {
  const c = engine.config;
  const spec = engine.spec;
  const m = measured.metrics;
  const record: RunRecord = {
    schema: 'paralab.run/1',
    id: runId(label),
    created: new Date().toISOString(),
    label,
    model: { id: engine.modelId, arch: c.hfArchitecture, params: paramCount(c), layers: c.layers, hidden: c.hidden, heads: c.heads, kv_heads: c.kvHeads, head_dim: c.headDim, ffn: c.ffn, vocab: c.vocabSize, experts: c.moe?.experts ?? 0, top_k: c.moe?.topK ?? 0, dtype: c.dtype },
    parallel: { spec: formatSpec(spec), world: spec.world, dp: spec.dp, pp: spec.pp, tp: spec.tp, sp: spec.sp, ep: spec.ep, micro: spec.micro, sp_impl: spec.sp > 1 || spec.spImpl === 'megatron' ? spec.spImpl : null, mesh: engine.mesh.describe(), segments: cut ?? 'collectives', notes: [...engine.notes, ...workloadNotes(o.workload, spec)] },
    device: { kind: engine.device, threads_per_rank: engine.threadsPerRank, ...hostFacts(), versions: runtimeVersions() },
    workload: { kind: o.workload, seed: o.seed, prompt_len: o.promptLen, ...measured.workload },
    metrics: {
      ttft_ms: m.ttft_ms,
      tpot_ms: m.tpot_ms,
      itl_ms: m.itl_ms,
      e2el_ms: m.e2el_ms,
      output_tok_s: m.output_tok_s,
      prefill_tok_s: m.prefill_tok_s,
      request_s: m.request_s,
      ...(m.goodput_req_s !== null ? { goodput_req_s: m.goodput_req_s, slo: m.slo } : {}),
      queue_ms: m.queue_ms,
      completed: m.completed,
      duration_ms: m.duration_ms,
      total_input_tokens: m.total_input_tokens,
      total_output_tokens: m.total_output_tokens,
      ...measured.extraMetrics,
    },
    ranks: rankRows(o, engine, snap),
    comm: commRows(snap.ledgers, snap.expected),
    correctness,
    ...(snap.expertLoad ? { expert_load: { tokens: snap.expertLoad.tokens, balancedness: snap.expertLoad.tokens.map(balancedness), by_rank: snap.expertLoad.byRank } } : {}),
    trace: { source: 'engine', file: 'trace.json' },
  };
  const trace = buildTrace({
    ranks: engine.cluster.ready.map((_, i) => {
      const p = engine.mesh.place(i).coord;
      return { label: `rank ${i} · dp${p.dp} pp${p.pp} sp${p.sp} tp${p.tp}`, spans: snap.spans[i] };
    }),
    host: [...requestSpans(measured.requests, measured.t0Us), ...stepSpans(measured.steps ?? [], measured.t0Us)],
    source: 'engine',
  });
  return { record, trace };
}
