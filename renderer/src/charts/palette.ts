/** Chart colours for the light and dark themes, and the UI font (kept in step with the CSS variables in styles.css). */

/** canvas text cannot `inherit` the page font: the same stack as --font */
export const CHART_FONT = "system-ui, -apple-system, 'Segoe UI', 'Inter', 'PingFang SC', 'Noto Sans CJK SC', 'Microsoft YaHei', 'Liberation Sans', sans-serif";
export interface ChartPalette {
  text: string;
  muted: string;
  grid: string;
  accent: string;
  accentMuted: string;
  tooltipBg: string;
}

export const LIGHT: ChartPalette = {
  text: '#1d232b',
  muted: '#6b7581',
  grid: '#e3e7ec',
  accent: '#2f6fde',
  accentMuted: '#b9c6d8',
  tooltipBg: '#ffffff',
};

export const DARK: ChartPalette = {
  text: '#dfe4ea',
  muted: '#8b95a1',
  grid: '#2a3038',
  accent: '#6ea2ff',
  accentMuted: '#46505c',
  tooltipBg: '#1b2027',
};

/**
 * Series colours, the same in both themes (distinct in light and dark, and
 * what the end-to-end test looks for in the canvas pixels).
 */
export const SERIES = {
  throughput: '#2f6fde',
  p50: '#23a26d',
  p99: '#e0663a',
  weights: '#2f6fde',
  kv: '#17a2b8',
  activations: '#9b59d0',
  measured: '#2f6fde',
  expected: '#f0a030',
  compute: '#2f6fde',
  transfer: '#e0663a',
  wait: '#d8b428',
  bubble: '#a3adb8',
} as const;

/** One colour per scaling axis (dp, pp, tp, sp, ep, hybrid). */
export const AXIS_COLORS: Record<string, string> = {
  dp: '#2f6fde',
  pp: '#23a26d',
  tp: '#e0663a',
  sp: '#9b59d0',
  ep: '#17a2b8',
  hybrid: '#6b7581',
};
