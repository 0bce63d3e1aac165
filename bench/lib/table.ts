/** Plain-text tables and number formatting for benchmark reports. */

export type Align = 'left' | 'right';

export interface Column {
  header: string;
  align?: Align;
}

/** Renders rows under headers, columns padded to their widest cell, a rule under the header. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[], indent = ''): string {
  const widths = columns.map((c, i) => Math.max(width(c.header), ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    indent +
    columns
      .map((c, i) => pad(cells[i] ?? '', widths[i], c.align ?? (i === 0 ? 'left' : 'right')))
      .join('  ')
      .trimEnd();
  const rule = indent + widths.map((w) => '─'.repeat(w)).join('  ');
  return [line(columns.map((c) => c.header)), rule, ...rows.map(line)].join('\n');
}

/** Display width, counting each code point as one column (enough for ×, ≥, ✓, —). */
function width(s: string): number {
  return [...s].length;
}

function pad(s: string, w: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, w - width(s)));
  return align === 'left' ? s + fill : fill + s;
}

/** 48213.7 → "48,214"; small values keep significant digits (3.456 → "3.46"). NaN/undefined → "—". */
export function fmtNum(x: number | null | undefined, digits?: number): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** 1.234 → "1.23×" */
export function fmtRatio(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${x.toFixed(2)}×`;
}

/** 0.034 → "±3%" (or "" when not finite). */
export function fmtSpread(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '' : `±${Math.round(x * 100)}%`;
}

/** ours / reference, or null when either is missing or the reference is not positive. */
export function ratio(ours: number | null | undefined, reference: number | null | undefined): number | null {
  if (ours === null || ours === undefined || reference === null || reference === undefined) return null;
  if (!Number.isFinite(ours) || !Number.isFinite(reference) || reference <= 0) return null;
  return ours / reference;
}
