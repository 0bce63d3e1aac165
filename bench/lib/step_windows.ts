import { median } from './stats.js';

/**
 * Windows over recorded step end times (ms), for runs measured inside another process (a training
 * CLI, a PyTorch script): the first `warmupFraction` of the steps (and at least `warmupMs`) are
 * dropped, the rest is cut into `windows` runs of equal step count, and each window's rate is
 * steps × unitsPerStep / its wall time. The reported figure is the median window's rate — the same
 * method as runWindows, applied after the fact to both engines alike.
 */
export function windowsFromStepTimes(endTimesMs: readonly number[], unitsPerStep: number, windows = 7, warmupFraction = 0.2, warmupMs = 1000): { rates: number[]; median: number } {
  const t0 = endTimesMs[0];
  let first = Math.floor(endTimesMs.length * warmupFraction);
  while (first < endTimesMs.length - windows - 1 && endTimesMs[first] - t0 < warmupMs) first++;
  const usable = endTimesMs.length - 1 - first;
  const per = Math.floor(usable / windows);
  if (per < 1) throw new Error(`windowsFromStepTimes: ${endTimesMs.length} steps are too few for ${windows} windows`);
  const rates: number[] = [];
  for (let w = 0; w < windows; w++) {
    const a = first + w * per;
    const b = a + per;
    rates.push((per * unitsPerStep) / ((endTimesMs[b] - endTimesMs[a]) / 1000));
  }
  return { rates, median: median(rates) };
}
