// @vitest-environment happy-dom
/** The Compare view's chart builders are pure: fixture run records in, ECharts options with the right data and series colours out. */
import { describe, expect, it } from 'vitest';
import { METRIC_COLUMNS, metricsTable, commOption, commTotals, defaultLatency, expertLoadOption, latencyOption, mainThroughput, memoryOption, runLabels, scalingOption, scalingSeries, throughputOption } from '../../renderer/src/charts/compare';
import { renderSpan, spanKind, timelineOption, timelineSpans } from '../../renderer/src/charts/timeline';
import { AXIS_COLORS, DARK, LIGHT, SERIES } from '../../renderer/src/charts/palette';
import { RECORDS, TRACE, record } from './labFixtures';

describe('compare chart builders', () => {
  it('labels runs by spec, adding the workload or id only when specs repeat', () => {
    expect(runLabels(RECORDS)).toEqual(['single', 'tp=2', 'dp=2']);
    const twice = [record('a1', 'tp=2', { tp: 2 }, { tokS: 1, ttft: 1 }), record('b2', 'tp=2', { tp: 2 }, { tokS: 1, ttft: 1, kind: 'decode' })];
    expect(runLabels(twice)).toEqual(['tp=2 · prefill', 'tp=2 · decode']);
    expect(runLabels([twice[0], { ...twice[0], id: 'zz99' }])).toEqual(['tp=2 · prefill · a1', 'tp=2 · prefill · zz99']);
  });

  it('throughput: one bar per run, prompt tok/s for prefill and generated tok/s for decode', () => {
    const o = throughputOption(RECORDS, LIGHT, { series: 'tok/s', axis: 'tok/s' });
    expect(o.xAxis.data).toEqual(['single', 'tp=2', 'dp=2']);
    expect(o.series[0].data).toEqual([100, 150, 190]);
    expect(o.series[0].itemStyle.color).toBe(SERIES.throughput);
    expect(mainThroughput(record('d', 'single', {}, { tokS: 80, ttft: 1, kind: 'decode' }))).toBe(40);
  });

  it('latency: p50 and p99 side by side for the chosen metric', () => {
    expect(defaultLatency(RECORDS)).toBe('ttft_ms');
    expect(defaultLatency([record('d', 'single', {}, { tokS: 1, ttft: 1, kind: 'decode' })])).toBe('tpot_ms');
    const o = latencyOption(RECORDS, 'ttft_ms', DARK, { p50: 'p50', p99: 'p99', axis: 'ms' });
    expect(o.series.map((s) => s.name)).toEqual(['p50', 'p99']);
    expect(o.series[0].data).toEqual([40, 28, 41]);
    expect(o.series[1].data).toEqual([60, 42, 61.5]);
    expect(o.series.map((s) => s.itemStyle.color)).toEqual([SERIES.p50, SERIES.p99]);
    expect(latencyOption(RECORDS, 'itl_ms', DARK, { p50: 'a', p99: 'b', axis: '' }).series[0].data).toEqual([null, null, null]);
  });

  it('scaling: one line per single-axis strategy, starting from single at degree 1; hybrids left out', () => {
    const runs = [...RECORDS, record('tp4', 'tp=4', { tp: 4 }, { tokS: 170, ttft: 20 }), record('h', 'dp=2,tp=2', { dp: 2, tp: 2 }, { tokS: 300, ttft: 30 })];
    expect(scalingSeries(runs)).toEqual([
      { axis: 'dp', points: [[1, 100], [2, 190]] },
      { axis: 'tp', points: [[1, 100], [2, 150], [4, 170]] },
    ]);
    const o = scalingOption(runs, LIGHT, { x: 'degree', y: 'tok/s' });
    expect(o.series.map((s) => [s.name, s.lineStyle.color])).toEqual([['DP', AXIS_COLORS.dp], ['TP', AXIS_COLORS.tp]]);
  });

  it('memory: stacked weights / KV / activations per (run, rank)', () => {
    const o = memoryOption(RECORDS.slice(0, 2), LIGHT, { weights: 'w', kv: 'kv', activations: 'a' });
    expect(o.xAxis.data).toEqual(['single · r0', 'tp=2 · r0', 'tp=2 · r1']);
    expect(o.series.map((s) => s.stack)).toEqual(['mem', 'mem', 'mem']);
    expect(o.series[0].data).toEqual([1_000_000, 500_000, 500_000]);
    expect(o.series[1].data).toEqual([50_000, 50_000, 50_000]);
    expect(o.series.map((s) => s.itemStyle.color)).toEqual([SERIES.weights, SERIES.kv, SERIES.activations]);
  });

  it('comm: measured beside closed-form bytes per op, summed over ranks', () => {
    expect(commTotals(RECORDS)).toEqual([{ op: 'all_reduce', measured: 8192, expected: 8192 }]);
    const o = commOption(RECORDS, LIGHT, { measured: 'm', expected: 'e' });
    expect(o.xAxis.data).toEqual(['tp=2 · all_reduce']);
    expect(o.series.map((s) => s.data)).toEqual([[8192], [8192]]);
  });

  it('expert load: a heatmap of [layer][expert] for MoE runs, null otherwise', () => {
    expect(expertLoadOption(RECORDS[0], LIGHT, { layer: 'l', expert: 'e', tokens: 't' })).toBeNull();
    const o = expertLoadOption(record('m', 'dp=2,ep=2', { dp: 2, ep: 2 }, { tokS: 1, ttft: 1, moe: true }), LIGHT, { layer: 'l', expert: 'e', tokens: 't' })!;
    expect(o.xAxis.data).toEqual(['E0', 'E1', 'E2', 'E3']);
    expect(o.yAxis.data).toEqual(['L0', 'L1']);
    expect(o.series[0].data).toContainEqual([0, 0, 5]);
    expect(o.visualMap.max).toBe(5);
  });
});

describe('per-rank timeline', () => {
  it('maps trace categories onto compute / transfer / wait / bubble', () => {
    expect(['compute', 'comm', 'transfer', 'wait', 'bubble', 'idle', 'io', undefined].map(spanKind)).toEqual(['compute', 'transfer', 'transfer', 'wait', 'bubble', 'bubble', null, null]);
  });

  it('puts each rank on its own row, times in ms from the first span, and sums each kind', () => {
    const t = timelineSpans(TRACE);
    expect(t.rows).toEqual([{ pid: 0, label: 'rank 0 · tp0' }, { pid: 1, label: 'rank 1' }]);
    expect(t.spans.compute).toEqual([[0, 0, 0.4, 'attn'], [1, 0, 0.3, 'attn']]);
    expect(t.spans.transfer).toEqual([[0, 0.4, 0.5, 'all_reduce']]);
    expect(t.totals.wait).toBeCloseTo(0.1);
    expect(t.totals.bubble).toBeCloseTo(0.05);
    expect(t.endMs).toBeCloseTo(0.55);
    expect(t.skipped).toBe(1);
  });

  it('is zoomable, with one coloured custom series per kind', () => {
    const o = timelineOption(TRACE, LIGHT, { compute: 'c', transfer: 't', wait: 'w', bubble: 'b', ms: 'ms' });
    expect(o.dataZoom.map((z) => z.type)).toEqual(['slider', 'inside']);
    expect(o.series.map((s) => s.itemStyle.color)).toEqual([SERIES.compute, SERIES.transfer, SERIES.wait, SERIES.bubble]);
    expect(o.yAxis.data).toEqual(['rank 0 · tp0', 'rank 1']);
    expect(o.xAxis.max).toBe(0.55); // the last span's end, rounded up for a readable axis
  });

  it('draws a span as a rectangle clipped to the plot', () => {
    const api = {
      value: (i: number) => [1, 0.2, 0.6][i],
      coord: ([x, y]: number[]) => [100 + x * 1000, 50 + y * 40],
      size: () => [0, 40],
      style: () => ({ fill: 'red' }),
    };
    const coordSys = { x: 100, y: 0, width: 500, height: 200 };
    const shape = renderSpan({ coordSys } as never, api as never) as { shape: { x: number; y: number; width: number; height: number } };
    expect(shape.shape.x).toBe(300);
    expect(shape.shape.width).toBeCloseTo(300); // 300 → 700 cut at the plot's right edge (600)
    expect(shape.shape.height).toBeCloseTo(24.8);
    const outside = renderSpan({ coordSys: { ...coordSys, width: 50 } } as never, api as never);
    expect(outside).toBeNull();
  });
});

describe('per-rank timeline at scale', () => {
  it('reduces a trace of 300k spans without hitting the argument limit', () => {
    const big = Array.from({ length: 300_000 }, (_, i) => ({ name: 's', cat: i % 2 ? 'compute' : 'comm', ph: 'X', ts: 5_000 + i, dur: 1, pid: i % 4, tid: 0 }));
    const t = timelineSpans(big);
    expect(t.rows).toHaveLength(4);
    expect(t.spans.compute.length + t.spans.transfer.length).toBe(300_000);
    expect(t.spans.transfer[0][1]).toBe(0);
  });
});

describe('metricsTable', () => {
  it('lists the measured numbers per run, a dash where a run has none', () => {
    const rows = metricsTable(RECORDS);
    expect(rows.map((r) => r.label)).toEqual(['single', 'tp=2', 'dp=2']);
    expect(rows[0].cells).toHaveLength(METRIC_COLUMNS.length);
    expect(rows[1].cells.slice(0, 4)).toEqual(['2', '28.00', '42.00', '7.00']);
    expect(rows[0].cells[5]).toBe('—');
    expect(rows[2].cells[7]).toBe('190');
  });
});
