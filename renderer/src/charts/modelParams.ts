/**
 * Chart options: parameters per model, one horizontal bar each, largest on
 * top, on a log axis spanning whole decades (the presets span 0.25M to 213M). Runnable models in the
 * accent colour, listed-only ones muted. Pure: models + palette in, options out.
 */
import type { EChartsOption } from 'echarts';
import type { ModelSummary } from '../../../main/lab/contract';
import { formatParams } from '../format';
import { CHART_FONT, type ChartPalette } from './palette';

export function modelParamsOption(models: ModelSummary[], palette: ChartPalette, seriesName: string) {
  const rows = [...models].sort((a, b) => a.params - b.params);
  const counts = rows.map((m) => m.params).filter((n) => n > 0);
  // whole decades around the data, so no axis space is spent below the smallest model
  const decade = (n: number, round: (x: number) => number) => 10 ** round(Math.log10(n));
  const min = counts.length ? decade(Math.min(...counts), Math.floor) : 1;
  const max = counts.length ? Math.max(decade(Math.max(...counts), Math.ceil), min * 10) : 10;
  return {
    animationDuration: 300,
    textStyle: { fontFamily: CHART_FONT, fontSize: 12 },
    grid: { left: 8, right: 64, top: 4, bottom: 4, outerBoundsMode: 'same', outerBoundsContain: 'axisLabel' },
    xAxis: {
      type: 'log',
      logBase: 10,
      min,
      max,
      axisLabel: { color: palette.muted, formatter: (v: number) => formatParams(v) },
      splitLine: { lineStyle: { color: palette.grid } },
    },
    yAxis: {
      type: 'category',
      data: rows.map((m) => m.name),
      axisTick: { show: false },
      axisLine: { lineStyle: { color: palette.grid } },
      axisLabel: { color: palette.text },
    },
    tooltip: {
      trigger: 'axis',
      axisPointer: { type: 'shadow' },
      backgroundColor: palette.tooltipBg,
      borderColor: palette.grid,
      textStyle: { color: palette.text },
      valueFormatter: (v) => formatParams(Number(v)),
    },
    series: [
      {
        type: 'bar',
        name: seriesName,
        barMaxWidth: 14,
        data: rows.map((m) => ({ value: m.params, itemStyle: { color: m.runnable ? palette.accent : palette.accentMuted, borderRadius: [0, 3, 3, 0] } })),
        label: { show: true, position: 'right', color: palette.muted, formatter: (p) => formatParams(Number(p.value)) },
      },
    ],
  } satisfies EChartsOption;
}
