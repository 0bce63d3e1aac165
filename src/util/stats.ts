/** Small order statistics (no dependencies, no mutation of the input): benchmark samples, and the engine's and trainer's few medians and quantiles. */

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Median; NaN for an empty list. An even count averages the two middle values. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Linear-interpolated quantile, q in [0, 1]. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = sorted(xs);
  const pos = Math.min(Math.max(q, 0), 1) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function sum(xs: readonly number[]): number {
  let t = 0;
  for (const x of xs) t += x;
  return t;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : sum(xs) / xs.length;
}

/** Sample standard deviation (n − 1); 0 with fewer than 2 values. */
export function stdev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let t = 0;
  for (const x of xs) t += (x - m) ** 2;
  return Math.sqrt(t / (xs.length - 1));
}

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  mean: number;
  /** Half the min–max range relative to the median (0.03 = ±3 %): how noisy the samples were. */
  spread: number;
}

export function summarize(xs: readonly number[]): Summary {
  const med = median(xs);
  const min = xs.length ? Math.min(...xs) : NaN;
  const max = xs.length ? Math.max(...xs) : NaN;
  return { n: xs.length, median: med, min, max, mean: mean(xs), spread: med > 0 ? (max - min) / 2 / med : NaN };
}
