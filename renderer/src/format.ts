/** Human-readable numbers for the UI: parameter counts (155.3M, 1M) and byte sizes (591.6 MiB). */

export function formatParams(n: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [scale, unit] of units) if (Math.abs(n) >= scale) return `${(n / scale).toFixed(1).replace(/\.0$/, '')}${unit}`;
  return String(n);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
