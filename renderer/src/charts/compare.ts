/**
 * Chart options for the Compare view, one pure builder per chart: run records
 * (and translated labels) in, an ECharts option out. Nothing here touches the
 * DOM or the lab, so each is unit-tested with fixture records.
 */
import type { EChartsOption } from 'echarts';
import type { RunRecord } from '../../../main/lab/contract';
import { formatBytes } from '../format';
import { axisOf } from '../spec';
import { AXIS_COLORS, CHART_FONT, SERIES, type ChartPalette } from './palette';

export type LatencyMetric = 'ttft_ms' | 'tpot_ms' | 'itl_ms' | 'e2el_ms';

/** One short, unique label per run: its spec, plus the workload or id when specs repeat. */
export function runLabels(runs: RunRecord[]): string[] {
  const base = runs.map((r) => r.parallel.spec);
  const dup = (s: string) => base.filter((b) => b === s).length > 1;
  const withWl = runs.map((r, i) => (dup(base[i]) ? `${base[i]} · ${r.workload.kind}` : base[i]));
  return withWl.map((l, i) => (withWl.filter((x) => x === l).length > 1 ? `${l} · ${runs[i].id.slice(-4)}` : l));
}

/** The throughput a run is about: prompt tokens/s for prefill, generated tokens/s otherwise. */
export function mainThroughput(r: RunRecord): number {
  return r.workload.kind === 'prefill' ? r.metrics.prefill_tok_s : r.metrics.output_tok_s;
}

/** The latency that matters for the first run's workload. */
export function defaultLatency(runs: RunRecord[]): LatencyMetric {
  const k = runs[0]?.workload.kind;
  return k === 'decode' ? 'tpot_ms' : k === 'serving' ? 'e2el_ms' : 'ttft_ms';
}

function base(p: ChartPalette) {
  return {
    animationDuration: 300,
    textStyle: { fontFamily: CHART_FONT, fontSize: 12, color: p.text },
    tooltip: { trigger: 'axis' as const, axisPointer: { type: 'shadow' as const }, backgroundColor: p.tooltipBg, borderColor: p.grid, textStyle: { color: p.text } },
    legend: { top: 0, textStyle: { color: p.muted }, itemWidth: 12, itemHeight: 8 },
    grid: { left: 8, right: 16, top: 30, bottom: 4, outerBoundsMode: 'same' as const, outerBoundsContain: 'axisLabel' as const },
  };
}
const catAxis = (p: ChartPalette, data: string[]) => ({ type: 'category' as const, data, axisTick: { show: false }, axisLine: { lineStyle: { color: p.grid } }, axisLabel: { color: p.text, interval: 0 } });
const valAxis = (p: ChartPalette, name: string, fmt?: (v: number) => string) => ({
  type: 'value' as const,
  name,
  nameTextStyle: { color: p.muted, align: 'left' as const },
  axisLabel: { color: p.muted, ...(fmt ? { formatter: fmt } : {}) },
  splitLine: { lineStyle: { color: p.grid } },
});
const round = (v: number) => Math.round(v * 100) / 100;

/** Tokens/s per run, one bar each. */
export function throughputOption(runs: RunRecord[], p: ChartPalette, l: { series: string; axis: string }) {
  return {
    ...base(p),
    legend: { show: false },
    xAxis: catAxis(p, runLabels(runs)),
    yAxis: valAxis(p, l.axis),
    series: [{ type: 'bar', name: l.series, barMaxWidth: 36, itemStyle: { color: SERIES.throughput, borderRadius: [3, 3, 0, 0] }, data: runs.map((r) => round(mainThroughput(r))), label: { show: true, position: 'top', color: p.muted } }],
  } satisfies EChartsOption;
}

/** p50 and p99 of a latency metric per run, side by side. Runs without the metric get no bar. */
export function latencyOption(runs: RunRecord[], metric: LatencyMetric, p: ChartPalette, l: { p50: string; p99: string; axis: string }) {
  const stat = (r: RunRecord) => r.metrics[metric] as { p50: number; p99: number } | undefined;
  return {
    ...base(p),
    xAxis: catAxis(p, runLabels(runs)),
    yAxis: valAxis(p, l.axis),
    series: [
      { type: 'bar', name: l.p50, barMaxWidth: 28, itemStyle: { color: SERIES.p50, borderRadius: [3, 3, 0, 0] }, data: runs.map((r) => (stat(r) ? round(stat(r)!.p50) : null)) },
      { type: 'bar', name: l.p99, barMaxWidth: 28, itemStyle: { color: SERIES.p99, borderRadius: [3, 3, 0, 0] }, data: runs.map((r) => (stat(r) ? round(stat(r)!.p99) : null)) },
    ],
  } satisfies EChartsOption;
}

/**
 * Throughput against degree, one line per axis that a run scales alone
 * (dp, pp, tp, sp, ep); `single` is degree 1 of every line. Hybrids are left
 * out (they have no single degree) and counted in `skipped`.
 */
export function scalingSeries(runs: RunRecord[]): { axis: string; points: [number, number][] }[] {
  const singles = runs.filter((r) => axisOf(r.parallel).axis === 'single');
  const byAxis = new Map<string, [number, number][]>();
  for (const r of runs) {
    const { axis, degree } = axisOf(r.parallel);
    if (axis === 'single' || axis === 'hybrid') continue;
    const pts = byAxis.get(axis) ?? singles.map((s) => [1, mainThroughput(s)] as [number, number]);
    pts.push([degree, mainThroughput(r)]);
    byAxis.set(axis, pts);
  }
  return [...byAxis.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([axis, points]) => ({ axis, points: points.sort((a, b) => a[0] - b[0]).map(([d, v]) => [d, round(v)] as [number, number]) }));
}

export function scalingOption(runs: RunRecord[], p: ChartPalette, l: { x: string; y: string }) {
  const series = scalingSeries(runs);
  return {
    ...base(p),
    tooltip: { ...base(p).tooltip, trigger: 'item' as const },
    xAxis: { type: 'value' as const, name: l.x, nameLocation: 'middle' as const, nameGap: 24, minInterval: 1, min: 1, nameTextStyle: { color: p.muted }, axisLabel: { color: p.muted }, splitLine: { lineStyle: { color: p.grid } } },
    yAxis: valAxis(p, l.y),
    series: series.map((s) => ({ type: 'line' as const, name: s.axis.toUpperCase(), data: s.points, symbolSize: 8, lineStyle: { width: 2, color: AXIS_COLORS[s.axis] }, itemStyle: { color: AXIS_COLORS[s.axis] } })),
  } satisfies EChartsOption;
}

/** Memory per rank, stacked weights / KV cache / activation peak; one bar per (run, rank). */
export function memoryOption(runs: RunRecord[], p: ChartPalette, l: { weights: string; kv: string; activations: string }) {
  const labels = runLabels(runs);
  const rows = runs.flatMap((r, i) => r.ranks.map((k) => ({ cat: `${labels[i]} · r${k.rank}`, m: k.memory })));
  const part = (f: 'weights_bytes' | 'kv_cache_bytes' | 'activation_peak_bytes') => rows.map((x) => x.m?.[f] ?? 0);
  const stack = (name: string, color: string, data: number[], top: boolean) => ({ type: 'bar' as const, name, stack: 'mem', barMaxWidth: 26, itemStyle: { color, ...(top ? { borderRadius: [3, 3, 0, 0] } : {}) }, data });
  return {
    ...base(p),
    tooltip: { ...base(p).tooltip, valueFormatter: (v: unknown) => formatBytes(Number(v)) },
    xAxis: { ...catAxis(p, rows.map((x) => x.cat)), axisLabel: { color: p.text, interval: 0, rotate: rows.length > 8 ? 30 : 0 } },
    yAxis: valAxis(p, '', (v) => formatBytes(v)),
    series: [stack(l.weights, SERIES.weights, part('weights_bytes'), false), stack(l.kv, SERIES.kv, part('kv_cache_bytes'), false), stack(l.activations, SERIES.activations, part('activation_peak_bytes'), true)],
  } satisfies EChartsOption;
}

/** Bytes sent per collective op (all ranks of all selected runs), measured beside the closed form. */
export function commTotals(runs: RunRecord[]): { op: string; measured: number; expected: number }[] {
  const m = new Map<string, { op: string; measured: number; expected: number }>();
  for (const r of runs) {
    for (const c of r.comm) {
      const row = m.get(c.op) ?? { op: c.op, measured: 0, expected: 0 };
      row.measured += c.bytes_sent;
      row.expected += c.expected_bytes_sent;
      m.set(c.op, row);
    }
  }
  return [...m.values()].sort((a, b) => b.measured - a.measured);
}

/** Per run and op: measured vs closed-form bytes (category per `spec · op`). */
export function commOption(runs: RunRecord[], p: ChartPalette, l: { measured: string; expected: string }) {
  const labels = runLabels(runs);
  const rows = runs.flatMap((r, i) => commTotals([r]).map((c) => ({ cat: `${labels[i]} · ${c.op}`, ...c })));
  return {
    ...base(p),
    tooltip: { ...base(p).tooltip, valueFormatter: (v: unknown) => formatBytes(Number(v)) },
    xAxis: { ...catAxis(p, rows.map((x) => x.cat)), axisLabel: { color: p.text, interval: 0, rotate: rows.length > 6 ? 30 : 0 } },
    yAxis: valAxis(p, '', (v) => formatBytes(v)),
    series: [
      { type: 'bar', name: l.measured, barMaxWidth: 26, itemStyle: { color: SERIES.measured, borderRadius: [3, 3, 0, 0] }, data: rows.map((x) => x.measured) },
      { type: 'bar', name: l.expected, barMaxWidth: 26, itemStyle: { color: SERIES.expected, borderRadius: [3, 3, 0, 0] }, data: rows.map((x) => x.expected) },
    ],
  } satisfies EChartsOption;
}

/** Expert-load heatmap of a MoE run: routed tokens per [layer][expert]. Null when the run has none. */
export function expertLoadOption(run: RunRecord, p: ChartPalette, l: { layer: string; expert: string; tokens: string }) {
  const t = run.expert_load?.tokens;
  if (!t || t.length === 0) return null;
  const experts = Math.max(...t.map((row) => row.length));
  const data = t.flatMap((row, layer) => row.map((v, e) => [e, layer, v] as [number, number, number]));
  const max = Math.max(1, ...data.map((d) => d[2]));
  return {
    animationDuration: 300,
    textStyle: { fontFamily: CHART_FONT, fontSize: 12, color: p.text },
    tooltip: { position: 'top' as const, backgroundColor: p.tooltipBg, borderColor: p.grid, textStyle: { color: p.text } },
    grid: { left: 8, right: 70, top: 8, bottom: 4, outerBoundsMode: 'same' as const, outerBoundsContain: 'axisLabel' as const },
    xAxis: { type: 'category' as const, name: l.expert, data: Array.from({ length: experts }, (_, e) => `E${e}`), axisLabel: { color: p.muted }, nameTextStyle: { color: p.muted } },
    yAxis: { type: 'category' as const, name: l.layer, data: t.map((_, i) => `L${i}`), axisLabel: { color: p.muted }, nameTextStyle: { color: p.muted } },
    visualMap: { min: 0, max, calculable: true, orient: 'vertical' as const, right: 0, top: 'center' as const, textStyle: { color: p.muted }, inRange: { color: [p.grid, SERIES.kv, SERIES.throughput] } },
    series: [{ type: 'heatmap' as const, name: l.tokens, data, label: { show: experts <= 16, color: p.text, fontSize: 10 } }],
  } satisfies EChartsOption;
}

/** The numbers behind the charts, one row per run ('—' where a run did not measure it). */
export function metricsTable(runs: RunRecord[]): { label: string; cells: string[] }[] {
  const labels = runLabels(runs);
  const f = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : '—');
  const st = (r: RunRecord, k: LatencyMetric, q: 'p50' | 'p99') => f((r.metrics[k] as { p50?: number; p99?: number } | undefined)?.[q]);
  return runs.map((r, i) => ({
    label: labels[i],
    cells: [
      String(r.parallel.world),
      st(r, 'ttft_ms', 'p50'),
      st(r, 'ttft_ms', 'p99'),
      st(r, 'tpot_ms', 'p50'),
      st(r, 'tpot_ms', 'p99'),
      st(r, 'itl_ms', 'p50'),
      st(r, 'e2el_ms', 'p50'),
      f(r.metrics.prefill_tok_s),
      f(r.metrics.output_tok_s),
      f(r.metrics.request_s),
      f(r.metrics['goodput_req_s']),
    ],
  }));
}
/** Column keys of metricsTable (labels: `cmp.col.<key>` in i18n). */
export const METRIC_COLUMNS = ['ranks', 'ttft50', 'ttft99', 'tpot50', 'tpot99', 'itl50', 'e2el50', 'prefill', 'output', 'req', 'goodput'] as const;
