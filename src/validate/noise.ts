/**
 * Run-to-run noise of a headline number: repeated runs of unchanged code differ (step latency by
 * ±20 % on a busy 2-core machine), so a baseline keeps the spread of several runs and a comparison
 * calls a difference a regression only beyond what that spread explains — a two-sided t-test at
 * 95 %, the test pyperf's `compare_to` applies.
 */
export interface Spread {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); 0 for one run. */
  stdev: number;
  min: number;
  max: number;
}

/** pyperf warns that a benchmark "looks unstable" when its standard deviation passes 10 % of the mean. */
export const UNSTABLE_PCT = 10;

export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error('spreadOf: no values');
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const stdev = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { n, mean, stdev, min: Math.min(...values), max: Math.max(...values) };
}

/** Two-sided 95 % quantiles of Student's t by degrees of freedom (1–10, then 15, 20, 30; beyond: 1.96). */
const T95: readonly [number, number][] = [
  [1, 12.706], [2, 4.303], [3, 3.182], [4, 2.776], [5, 2.571], [6, 2.447], [7, 2.365], [8, 2.306], [9, 2.262], [10, 2.228],
  [15, 2.131], [20, 2.086], [30, 2.042],
];

export function t95(df: number): number {
  for (const [d, t] of T95) if (df <= d) return t;
  return 1.96;
}

/**
 * The smallest difference of the two means (in percent of the baseline's mean) that is not noise,
 * or null when neither side was repeated. A side measured once is taken to vary as much as the
 * repeated side does from run to run.
 */
export function noisePct(base: Spread, current: Spread): number | null {
  const repeated = [base, current].filter((s) => s.n > 1);
  if (repeated.length === 0 || base.mean === 0) return null;
  const perRun = (s: Spread): number => (s.n > 1 ? s.stdev : repeated[0].stdev);
  const standardError = Math.sqrt(perRun(base) ** 2 / base.n + perRun(current) ** 2 / current.n);
  const df = repeated.reduce((d, s) => d + s.n - 1, 0);
  return (100 * t95(df) * standardError) / Math.abs(base.mean);
}

/** The standard deviation in percent of the mean (the coefficient of variation), or null for one run. */
export function relativeStdevPct(s: Spread): number | null {
  return s.n > 1 && s.mean !== 0 ? (100 * s.stdev) / Math.abs(s.mean) : null;
}
