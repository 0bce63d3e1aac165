/** Plain-text tables for the validation commands' reports. */

/**
 * Rows under a header, columns padded to their widest cell and two spaces apart. `align` gives
 * each column 'l' or 'r' (default: first and last left, numbers between right-aligned).
 */
export function table(header: string[], rows: string[][], align?: Array<'l' | 'r'>): string[] {
  const al = align ?? header.map((_, i) => (i === 0 || i === header.length - 1 ? 'l' : 'r'));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]): string => r.map((c, i) => (al[i] === 'l' ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

/** A signed percentage, e.g. "+12.3%". */
export function pct(x: number): string {
  if (!Number.isFinite(x)) return x > 0 ? '+inf%' : x < 0 ? '-inf%' : 'n/a';
  return `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`;
}
