/**
 * The report's comparison charts, rendered by ECharts on the server side to
 * SVG strings (`init(null, null, { renderer: 'svg', ssr: true })` +
 * `renderToSVGString()`): the HTML embeds them inline, so it needs no script
 * and no network, and the PDF prints them as vectors.
 */
import * as echarts from 'echarts';
import type { RunRecord, TraceEvent } from '../contract';
import type { L } from './i18n';

const PALETTE = ['#3b6fd8', '#e0803a', '#3aa675', '#c8455a', '#8a63c9', '#7d7d7d'];
const MiB = 2 ** 20;

export function renderSvg(option: Record<string, unknown>, width = 880, height = 340): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({ animation: false, color: PALETTE, textStyle: { fontFamily: 'system-ui, "Noto Sans CJK SC", "Noto Sans", sans-serif' }, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

// Text is measured by an estimate on the server and drawn with the browser's
// font, so legends get generous gaps and sit well below the title.
const LEGEND = { top: 32, itemGap: 30, textStyle: { fontSize: 12 } };
const base = (title: string) => ({
  title: { text: title, left: 'center', top: 4, textStyle: { fontSize: 14, fontWeight: 600 } },
  legend: LEGEND,
  grid: { left: 70, right: 30, top: 80, bottom: 70, containLabel: false },
});

const catAxis = (names: string[]) => ({ type: 'category', data: names, axisLabel: { interval: 0, rotate: names.length > 5 ? 25 : 0, fontSize: 11 } });
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export function throughputChart(runs: RunRecord[], l: L): string {
  const names = runs.map((r) => r.label);
  const series = [
    { name: l.prefillTokS, type: 'bar', data: runs.map((r) => round(r.metrics.prefill_tok_s, 1)) },
    { name: l.outputTokS, type: 'bar', data: runs.map((r) => round(r.metrics.output_tok_s, 1)) },
  ];
  if (runs.some((r) => typeof r.metrics['decode_tok_s'] === 'number')) series.push({ name: l.decodeTokS, type: 'bar', data: runs.map((r) => round(Number(r.metrics['decode_tok_s'] ?? 0), 1)) });
  return renderSvg({ ...base(l.chartThroughput), xAxis: catAxis(names), yAxis: { type: 'value', name: 'tok/s' }, series: series.map((s) => ({ ...s, label: { show: true, position: 'top', fontSize: 10 } })) });
}

export function latencyChart(runs: RunRecord[], _l: L): string {
  const names = runs.map((r) => r.label);
  const m = (key: 'ttft_ms' | 'tpot_ms' | 'itl_ms' | 'e2el_ms') => runs.map((r) => round(r.metrics[key]?.p50 ?? 0));
  return renderSvg({
    ...base(_l.chartLatency),
    xAxis: catAxis(names),
    yAxis: { type: 'value', name: 'ms' },
    series: [
      { name: 'TTFT', type: 'bar', data: m('ttft_ms') },
      { name: 'TPOT', type: 'bar', data: m('tpot_ms') },
      { name: 'ITL', type: 'bar', data: m('itl_ms') },
      { name: 'E2EL', type: 'bar', data: m('e2el_ms') },
    ],
  });
}

export function percentileChart(runs: RunRecord[], l: L): string {
  const xs = ['mean', 'p50', 'p90', 'p99'] as const;
  const series = runs.flatMap((r, i) => [
    { name: `${r.label} TTFT`, type: 'line', data: xs.map((p) => round(r.metrics.ttft_ms[p])), lineStyle: { color: PALETTE[i % PALETTE.length] }, itemStyle: { color: PALETTE[i % PALETTE.length] }, symbol: 'circle' },
    { name: `${r.label} TPOT`, type: 'line', data: xs.map((p) => round(r.metrics.tpot_ms[p])), lineStyle: { type: 'dashed', color: PALETTE[i % PALETTE.length] }, itemStyle: { color: PALETTE[i % PALETTE.length] }, symbol: 'triangle' },
  ]);
  return renderSvg({ ...base(l.chartPercentiles), legend: { ...LEGEND, type: 'plain' }, grid: { left: 70, right: 30, top: 70 + 26 * Math.ceil(series.length / 3), bottom: 40 }, xAxis: { type: 'category', data: [...xs] }, yAxis: { type: 'value', name: 'ms', scale: true }, series }, 880, 320 + 26 * Math.ceil(series.length / 3));
}

export function memoryChart(runs: RunRecord[], l: L): string {
  const rows = runs.flatMap((r) => r.ranks.map((k) => ({ name: `${r.label} r${k.rank}`, m: k.memory })));
  const pick = (f: (m: NonNullable<RunRecord['ranks'][number]['memory']>) => number) => rows.map((x) => (x.m ? round(f(x.m) / MiB, 3) : 0));
  return renderSvg(
    {
      ...base(l.chartMemory),
      xAxis: catAxis(rows.map((x) => x.name)),
      yAxis: [{ type: 'value', name: 'MiB (accounted)' }, { type: 'value', name: 'MiB (RSS)' }],
      series: [
        { name: l.weights, type: 'bar', stack: 'mem', data: pick((m) => m.weights_bytes) },
        { name: l.kv, type: 'bar', stack: 'mem', data: pick((m) => m.kv_cache_bytes) },
        { name: l.activation, type: 'bar', stack: 'mem', data: pick((m) => m.activation_peak_bytes) },
        { name: l.rss, type: 'line', yAxisIndex: 1, data: pick((m) => m.rss_peak_bytes), symbol: 'diamond', symbolSize: 9, lineStyle: { width: 0 } },
      ],
    },
    880,
    360,
  );
}

/** Bytes sent per op summed over ranks, per run: measured beside the closed form. */
export function commChart(runs: RunRecord[], l: L): string | null {
  const rows: { name: string; measured: number; expected: number }[] = [];
  for (const r of runs) {
    const ops = new Map<string, { measured: number; expected: number }>();
    for (const c of r.comm) {
      const e = ops.get(c.op) ?? { measured: 0, expected: 0 };
      e.measured += c.bytes_sent;
      e.expected += c.expected_bytes_sent;
      ops.set(c.op, e);
    }
    for (const [op, e] of ops) rows.push({ name: `${r.label} ${op}`, ...e });
  }
  if (rows.length === 0) return null;
  return renderSvg({
    ...base(l.chartComm),
    xAxis: catAxis(rows.map((x) => x.name)),
    yAxis: { type: 'value', name: 'MiB' },
    series: [
      { name: l.measured, type: 'bar', data: rows.map((x) => round(x.measured / MiB, 4)) },
      { name: l.expected, type: 'bar', data: rows.map((x) => round(x.expected / MiB, 4)) },
    ],
  });
}

export function timeChart(runs: RunRecord[], l: L): string {
  const rows = runs.flatMap((r) => r.ranks.map((k) => ({ name: `${r.label} r${k.rank}`, t: k.time })));
  const pick = (f: (t: NonNullable<RunRecord['ranks'][number]['time']>) => number) => rows.map((x) => (x.t ? round(f(x.t)) : 0));
  return renderSvg(
    {
      ...base(l.chartTime),
      grid: { left: 150, right: 30, top: 80, bottom: 40 },
      yAxis: { type: 'category', data: rows.map((x) => x.name), inverse: true, axisLabel: { fontSize: 11 } },
      xAxis: { type: 'value', name: 'ms' },
      series: [
        { name: l.compute, type: 'bar', stack: 't', data: pick((t) => t.compute_ms) },
        { name: l.transfer, type: 'bar', stack: 't', data: pick((t) => t.comm_ms) },
        { name: l.wait, type: 'bar', stack: 't', data: pick((t) => t.wait_ms ?? 0) },
        { name: l.bubble, type: 'bar', stack: 't', data: pick((t) => t.bubble_ms) },
      ],
    },
    880,
    110 + 26 * rows.length,
  );
}

const CAT_COLOR: Record<string, string> = { compute: PALETTE[0], comm: PALETTE[1], wait: PALETTE[3], bubble: PALETTE[5] };

/**
 * A Gantt of one run's trace: one row per rank, a bar per span (compute,
 * comm, wait, bubble; step envelopes left out). At most `maxSpans` spans are
 * drawn — the first ones in time — so a long run stays a readable file.
 */
export function timelineChart(run: RunRecord, trace: TraceEvent[], l: L, maxSpans = 1500): string | null {
  const world = run.parallel.world;
  const spans = trace.filter((e) => e.ph === 'X' && e.pid < world && e.cat && e.cat in CAT_COLOR).sort((a, b) => a.ts - b.ts).slice(0, maxSpans);
  if (spans.length === 0) return null;
  const data = spans.map((e) => ({ value: [e.pid, e.ts / 1000, (e.ts + (e.dur ?? 0)) / 1000], itemStyle: { color: CAT_COLOR[e.cat!] } }));
  const ranks = Array.from({ length: world }, (_, r) => `rank ${r}`);
  return renderSvg(
    {
      title: { text: `${l.chartTimeline}: ${run.label}`, left: 'center', top: 4, textStyle: { fontSize: 13, fontWeight: 600 } },
      legend: { ...LEGEND, data: Object.keys(CAT_COLOR).map((c) => ({ name: c, itemStyle: { color: CAT_COLOR[c] } })) },
      grid: { left: 70, right: 30, top: 72, bottom: 36 },
      xAxis: { type: 'value', name: 'ms', min: 'dataMin', scale: true },
      yAxis: { type: 'category', data: ranks, inverse: true },
      series: [
        ...Object.keys(CAT_COLOR).map((c) => ({ name: c, type: 'bar', data: [], itemStyle: { color: CAT_COLOR[c] } })),
        {
          type: 'custom',
          encode: { x: [1, 2], y: 0 },
          data,
          renderItem: (_params: unknown, api: { value(i: number): number; coord(p: number[]): number[]; size(p: number[]): number[]; visual(k: string): unknown }) => {
            const start = api.coord([api.value(1), api.value(0)]);
            const end = api.coord([api.value(2), api.value(0)]);
            const h = api.size([0, 1])[1] * 0.6;
            return { type: 'rect', shape: { x: start[0], y: start[1] - h / 2, width: Math.max(0.5, end[0] - start[0]), height: h }, style: { fill: api.visual('color') as string } };
          },
        },
      ],
    },
    880,
    110 + 34 * world,
  );
}

/** MoE runs: tokens routed to each expert of each layer (heatmap), the balance per layer in the title. */
export function expertLoadChart(run: RunRecord, l: L): string | null {
  const load = run.expert_load;
  if (!load || load.tokens.length === 0) return null;
  const layers = load.tokens.length;
  const experts = load.tokens[0]?.length ?? 0;
  const data = load.tokens.flatMap((row, layer) => row.map((n, e) => [e, layer, n]));
  const max = Math.max(1, ...data.map((x) => x[2]));
  const worst = Math.max(...load.balancedness.filter((b) => Number.isFinite(b)));
  return renderSvg(
    {
      title: { text: `${l.expertLoad}: ${run.label} (max ÷ mean ≤ ${Number.isFinite(worst) ? worst.toFixed(2) : '–'})`, left: 'center', top: 4, textStyle: { fontSize: 13, fontWeight: 600 } },
      grid: { left: 80, right: 90, top: 40, bottom: 52 },
      xAxis: { type: 'category', name: 'expert', nameLocation: 'middle', nameGap: 26, data: Array.from({ length: experts }, (_, e) => String(e)) },
      yAxis: { type: 'category', data: Array.from({ length: layers }, (_, i) => `layer ${i}`), inverse: true },
      visualMap: { min: 0, max, calculable: false, orient: 'vertical', right: 10, top: 'middle', inRange: { color: ['#eef3fc', PALETTE[0]] } },
      series: [{ type: 'heatmap', data, label: { show: experts * layers <= 128, fontSize: 10 } }],
    },
    880,
    90 + 26 * layers,
  );
}
