/** Share arithmetic the policies have in common; shares are fractions of the global batch summing to 1. */

export function equalShares(n: number): number[] {
  return Array.from({ length: n }, () => 1 / n);
}

/**
 * Shares proportional to speed (1 / ms per sample), each at least `floor` (a rank never starves:
 * its speed must stay measurable). A shard whose time is unknown keeps an equal share's speed.
 */
export function speedShares(msPerSample: readonly number[], floor: number): number[] {
  return arrivalShares(msPerSample, msPerSample.map(() => 0), 1, floor);
}

/**
 * Shares with which every shard arrives at the step's barrier at the same time. A shard's time
 * between barriers is `fixedMs` (what it does whatever its share: the previous step's gradient
 * exchange, optimizer, between-step work) plus `msPerSample` × its samples; with `globalBatch`
 * samples per step, shard i gets x_i so that fixed_i + msPerSample_i · globalBatch · x_i is the
 * same T for all. With no fixed time this is `speedShares`. A shard whose solution falls below
 * `floor` is held there and the others solved again; unknown times count as typical ones.
 *
 * `jitterMs` (each shard's step-to-step standard deviation) aims at the shortest expected step
 * rather than equal mean arrivals: the step lasts until the last shard arrives, and moving a sample
 * to shard i costs msPerSample_i, so at the optimum shard i is the last one with probability
 * ∝ 1 / msPerSample_i (two shards: P(slow one last) = fast / (fast + slow) time per sample). With
 * normal arrivals that puts each shard's mean arrival at jitter_i · probit(p_i), p_i its share of
 * Σ msPerSample (exact for two shards with one steady; an approximation otherwise): a slow,
 * jittery shard is planned to arrive early, so the fast ones rarely wait for its bad steps.
 */
export function arrivalShares(msPerSample: readonly number[], fixedMs: readonly number[], globalBatch: number, floor: number, jitterMs?: readonly number[]): number[] {
  const n = msPerSample.length;
  const perShare = knownTimes(msPerSample).map((t) => t * globalBatch);
  const cost = perShare.reduce((a, b) => a + b, 0);
  const margin = (i: number): number => {
    const j = jitterMs?.[i];
    return j !== undefined && j > 0 && Number.isFinite(j) ? j * probit(perShare[i] / cost) : 0;
  };
  const fixed = fixedMs.map((f, i) => fixedOrNone(f) + margin(i));
  const held = new Array<boolean>(n).fill(false);
  for (;;) {
    const free = 1 - floor * held.filter(Boolean).length;
    let inv = 0;
    let lead = 0;
    for (let i = 0; i < n; i++) {
      if (held[i]) continue;
      inv += 1 / perShare[i];
      lead += fixed[i] / perShare[i];
    }
    const t = (free + lead) / inv;
    // Margins may be negative: fixed times are relative, only their differences move the shares.
    const x = perShare.map((a, i) => (held[i] ? floor : (t - fixed[i]) / a));
    const low = x.map((s, i) => !held[i] && s < floor);
    if (!low.some(Boolean)) return x;
    low.forEach((l, i) => (held[i] ||= l));
  }
}

/**
 * The step time (ms) the same measurements predict for `shares`: the last shard's arrival,
 * fixed_i + msPerSample_i · globalBatch · x_i. Unknown times count as typical ones, as in arrivalShares.
 */
export function predictedStepMs(msPerSample: readonly number[], fixedMs: readonly number[], globalBatch: number, shares: readonly number[]): number {
  const times = knownTimes(msPerSample);
  return Math.max(...shares.map((x, i) => fixedOrNone(fixedMs[i]) + times[i] * globalBatch * x));
}

/** ms per sample with an unknown (unmeasured, not positive) time replaced by the known ones' mean (1 if none is known). */
function knownTimes(msPerSample: readonly number[]): number[] {
  const ok = (t: number): boolean => t > 0 && Number.isFinite(t);
  const known = msPerSample.filter(ok);
  const typical = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1;
  return msPerSample.map((t) => (ok(t) ? t : typical));
}

/** A fixed time per step as measured, or 0 where none was (negative or not finite). */
function fixedOrNone(f: number): number {
  return f >= 0 && Number.isFinite(f) ? f : 0;
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

/** The standard normal quantile (Abramowitz & Stegun 26.2.23, error < 4.5e-4), p in (0, 1). */
export function probit(p: number): number {
  if (!(p > 0 && p < 1)) return p <= 0 ? -Infinity : Infinity;
  const q = p < 0.5 ? p : 1 - p;
  const t = Math.sqrt(-2 * Math.log(q));
  const z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
  return p < 0.5 ? -z : z;
}
