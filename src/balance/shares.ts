/** Share arithmetic the policies have in common; shares are fractions of the global batch summing to 1. */

export function equalShares(n: number): number[] {
  return Array.from({ length: n }, () => 1 / n);
}

/**
 * Shares proportional to speed (1 / ms per sample), each at least `floor` (a rank never starves:
 * its speed must stay measurable). A shard whose time is unknown keeps an equal share's speed.
 */
export function speedShares(msPerSample: readonly number[], floor: number): number[] {
  const known = msPerSample.filter((t) => t > 0 && Number.isFinite(t));
  const typical = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
  const speed = msPerSample.map((t) => 1 / (t > 0 && Number.isFinite(t) ? t : typical));
  return withFloor(normalise(speed), floor);
}

/** Moves from `from` towards `to` by at most `maxDelta` in any share; the sum stays 1. */
export function boundedStep(from: readonly number[], to: readonly number[], maxDelta: number): number[] {
  const largest = Math.max(...to.map((t, i) => Math.abs(t - from[i])));
  const k = largest > maxDelta ? maxDelta / largest : 1;
  return from.map((f, i) => f + k * (to[i] - f));
}

/** The largest change of any share. */
export function largestChange(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((x, i) => Math.abs(x - b[i])));
}

export function normalise(v: readonly number[]): number[] {
  const sum = v.reduce((a, b) => a + b, 0);
  return v.map((x) => x / sum);
}

/** Raises shares below `floor` to it, taking the difference from the others in proportion. */
function withFloor(shares: number[], floor: number): number[] {
  const low = shares.map((s) => s < floor);
  if (!low.some(Boolean)) return shares;
  const free = 1 - floor * low.filter(Boolean).length;
  const restSum = shares.reduce((a, s, i) => (low[i] ? a : a + s), 0);
  return shares.map((s, i) => (low[i] ? floor : (s / restSum) * free));
}
