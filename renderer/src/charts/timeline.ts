/**
 * The per-rank timeline (Gantt) of a run from its Chrome trace events: one
 * row per rank, one bar per span, coloured by what the rank was doing —
 * compute, transfer (collectives / send-recv), wait (for the slowest peer),
 * bubble (idle between pipeline stages). Zoomable on the time axis.
 * `timelineSpans` is the pure reduction; `timelineOption` the chart.
 */
import type { EChartsOption } from 'echarts';
import type { CustomSeriesRenderItemAPI, CustomSeriesRenderItemParams, CustomSeriesRenderItemReturn } from 'echarts';
import type { TraceEvent } from '../../../main/lab/contract';
import { CHART_FONT, SERIES, type ChartPalette } from './palette';

export const SPAN_KINDS = ['compute', 'transfer', 'wait', 'bubble'] as const;
export type SpanKind = (typeof SPAN_KINDS)[number];

/** Trace categories (engine RankSpan.cat and common synonyms) → the four kinds. */
export function spanKind(cat: string | undefined): SpanKind | null {
  switch ((cat ?? '').toLowerCase()) {
    case 'compute':
      return 'compute';
    case 'comm':
    case 'transfer':
    case 'collective':
      return 'transfer';
    case 'wait':
      return 'wait';
    case 'bubble':
    case 'idle':
      return 'bubble';
    default:
      return null;
  }
}

export interface TimelineSpans {
  /** row labels, top to bottom, and the pid of each row */
  rows: { pid: number; label: string }[];
  /** per kind: [row, startMs, endMs, name] */
  spans: Record<SpanKind, [number, number, number, string][]>;
  /** total ms per kind over all ranks */
  totals: Record<SpanKind, number>;
  endMs: number;
  /** complete events whose category is none of the four */
  skipped: number;
}

export function timelineSpans(events: TraceEvent[]): TimelineSpans {
  const names = new Map<number, string>();
  for (const e of events) if (e.ph === 'M' && e.name === 'process_name' && typeof e.args?.['name'] === 'string') names.set(e.pid, e.args['name'] as string);
  const complete = events.filter((e) => e.ph === 'X' && typeof e.dur === 'number');
  const pids = [...new Set(complete.map((e) => e.pid))].sort((a, b) => a - b);
  const row = new Map(pids.map((p, i) => [p, i]));
  // a loop, not Math.min(...spread): traces of long runs hold far more events than the argument limit
  const t0 = complete.reduce((m, e) => Math.min(m, e.ts), complete.length ? Infinity : 0);
  const spans = { compute: [], transfer: [], wait: [], bubble: [] } as TimelineSpans['spans'];
  const totals = { compute: 0, transfer: 0, wait: 0, bubble: 0 };
  let skipped = 0;
  let endMs = 0;
  for (const e of complete) {
    const kind = spanKind(e.cat);
    if (!kind) {
      skipped++;
      continue;
    }
    const s = (e.ts - t0) / 1000;
    const end = s + e.dur! / 1000;
    spans[kind].push([row.get(e.pid)!, s, end, e.name]);
    totals[kind] += e.dur! / 1000;
    endMs = Math.max(endMs, end);
  }
  return { rows: pids.map((pid) => ({ pid, label: names.get(pid) ?? `rank ${pid}` })), spans, totals, endMs, skipped };
}

/** Draws one span as a rectangle in its rank's row (ECharts custom series). */
export function renderSpan(params: CustomSeriesRenderItemParams, api: CustomSeriesRenderItemAPI): CustomSeriesRenderItemReturn {
  const row = api.value(0) as number;
  const start = api.coord([api.value(1), row]);
  const end = api.coord([api.value(2), row]);
  const h = (api.size!([0, 1]) as number[])[1] * 0.62;
  const cs = params.coordSys as unknown as { x: number; y: number; width: number; height: number };
  const x = Math.max(start[0], cs.x);
  const w = Math.min(end[0], cs.x + cs.width) - x;
  if (w <= 0) return null;
  return { type: 'rect', shape: { x, y: start[1] - h / 2, width: Math.max(w, 0.6), height: h }, style: api.style() };
}

export function timelineOption(events: TraceEvent[], p: ChartPalette, labels: Record<SpanKind, string> & { ms: string }) {
  const t = timelineSpans(events);
  return {
    animation: false,
    textStyle: { fontFamily: CHART_FONT, fontSize: 12, color: p.text },
    legend: { top: 0, textStyle: { color: p.muted }, itemWidth: 12, itemHeight: 8 },
    tooltip: {
      trigger: 'item' as const,
      backgroundColor: p.tooltipBg,
      borderColor: p.grid,
      textStyle: { color: p.text },
      formatter: (x: unknown) => {
        const d = (x as { value: [number, number, number, string]; seriesName: string }).value;
        return `${d[3]} · ${(x as { seriesName: string }).seriesName}<br/>${d[1].toFixed(3)} → ${d[2].toFixed(3)} ${labels.ms} (${(d[2] - d[1]).toFixed(3)})`;
      },
    },
    grid: { left: 8, right: 16, top: 30, bottom: 44, outerBoundsMode: 'same' as const, outerBoundsContain: 'axisLabel' as const },
    dataZoom: [
      { type: 'slider' as const, xAxisIndex: 0, filterMode: 'weakFilter' as const, height: 18, bottom: 8, borderColor: p.grid, textStyle: { color: p.muted } },
      { type: 'inside' as const, xAxisIndex: 0, filterMode: 'weakFilter' as const },
    ],
    xAxis: { type: 'value' as const, min: 0, max: t.endMs >= 10 ? Math.ceil(t.endMs) : Math.max(0.01, Math.ceil(t.endMs * 100 - 1e-6) / 100), name: labels.ms, nameTextStyle: { color: p.muted }, axisLabel: { color: p.muted }, splitLine: { lineStyle: { color: p.grid } } },
    yAxis: { type: 'category' as const, inverse: true, data: t.rows.map((r) => r.label), axisTick: { show: false }, axisLabel: { color: p.text }, axisLine: { lineStyle: { color: p.grid } } },
    series: SPAN_KINDS.map((k) => ({
      type: 'custom' as const,
      name: labels[k],
      renderItem: renderSpan,
      itemStyle: { color: SERIES[k] },
      encode: { x: [1, 2], y: 0 },
      data: t.spans[k],
    })),
  } satisfies EChartsOption;
}
