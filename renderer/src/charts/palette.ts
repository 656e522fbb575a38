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
