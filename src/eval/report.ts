/**
 * `smolcluster eval`'s printed figures: one line per file and task for a model, or, with a second
 * model (--compare), a table of each figure for both and the change from the first to the second.
 */
import type { EvalFigures } from './evaluate.js';

/** Figures in print order, and how each is written. */
const SHOWN: ReadonlyArray<readonly [key: string, label: string, write: (v: number) => string]> = [
  ['loss', 'loss', (v) => v.toFixed(4)],
  ['perplexity', 'perplexity', (v) => v.toFixed(3)],
  ['tokenAccuracy', 'token accuracy', percent],
  ['acc', 'acc', (v) => v.toFixed(4)],
  ['acc_norm', 'acc_norm', (v) => v.toFixed(4)],
  ['exact_match', 'exact_match', (v) => v.toFixed(4)],
  ['tokens', 'tokens', (v) => v.toLocaleString('en-US')],
  ['docs', 'documents', (v) => v.toLocaleString('en-US')],
  ['tokensPerSecond', 'tokens/s', (v) => v.toFixed(1)],
];

function percent(v: number): string {
  return `${(100 * v).toFixed(2)} %`;
}

/** Each file's and task's figures for one model, a line each. */
export function figureLines(f: EvalFigures): string[] {
  return sections(f).map(({ title, values }) => `${title}: ${SHOWN.filter(([k]) => k in values).map(([k, label, write]) => `${label} ${write(values[k])}`).join(', ')}`);
}

/** The two models' figures side by side, with the change (second − first); speed is left out of the change. */
export function comparisonTable(a: EvalFigures, b: EvalFigures, names: [string, string]): string[] {
  const rows: string[][] = [['', names[0], names[1], 'change']];
  const other = sections(b);
  sections(a).forEach(({ title, values }, i) => {
    rows.push([title, '', '', '']);
    for (const [k, label, write] of SHOWN) {
      if (!(k in values)) continue;
      const theirs = other[i].values[k];
      const change = k === 'tokensPerSecond' || k === 'tokens' || k === 'docs' ? '' : signed(theirs - values[k], write);
      rows.push([`  ${label}`, write(values[k]), write(theirs), change]);
    }
  });
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd());
}

function signed(v: number, write: (v: number) => string): string {
  return v >= 0 ? `+${write(v)}` : `-${write(-v)}`;
}

function sections(f: EvalFigures): { title: string; values: Record<string, number> }[] {
  const numbers = (o: object): Record<string, number> => Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === 'number'));
  return [
    ...(f.data ? [{ title: `${f.data.file} (${f.data.kind})`, values: numbers(f.data) }] : []),
    ...f.tasks.map((t) => ({ title: `${t.file} (${t.kind})`, values: numbers(t) })),
  ];
}
