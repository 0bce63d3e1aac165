import { performance } from 'node:perf_hooks';
import { type Summary, summarize } from './stats.js';

/**
 * The timing method shared by every benchmark (and mirrored line for line by the Python reference
 * scripts): a warm-up, then K timed windows, each counted in whole steps; the figure reported is
 * the median window's rate.
 *
 *  - warm-up: steps run until at least `warmupMs` have passed AND at least `warmupSteps` were done.
 *  - window:  steps run until at least `windowMs` have passed (at least one step); its rate is
 *             steps × unitsPerStep / elapsed seconds. The clock is read once per step, between steps.
 *
 * Each window also records its CPU share: process CPU time (all threads) / wall time. A
 * single-threaded engine on an idle core shows ≈ 1.0; well below 1 means other processes took the
 * core during the window (the figure is then pessimistic), above 1 means more threads were busy
 * than the benchmark asked for.
 */
export interface WindowPlan {
  warmupMs: number;
  warmupSteps: number;
  windows: number;
  windowMs: number;
}

export interface WindowResult {
  /** Rate of each window, in units per second, in the order run. */
  rates: number[];
  /** Whole steps in each window. */
  steps: number[];
  /** Length of each window in seconds. */
  seconds: number[];
  /** Process CPU time / wall time of each window. */
  cpuShare: number[];
  warmup: { steps: number; seconds: number };
  /** The median window's rate: the reported figure. */
  median: number;
  summary: Summary;
}

/** Scales a plan's durations (e.g. 0.3 for a quick run), keeping at least `minWindows` windows. */
export function scalePlan(plan: WindowPlan, factor: number, minWindows = 3): WindowPlan {
  return {
    warmupMs: Math.round(plan.warmupMs * factor),
    warmupSteps: plan.warmupSteps,
    windows: Math.max(minWindows, Math.min(plan.windows, Math.round(plan.windows * Math.sqrt(factor)))),
    windowMs: Math.round(plan.windowMs * factor),
  };
}

/** Rough wall time a plan takes when one step lasts `stepMs` (for budgeting). */
export function estimatePlanMs(plan: WindowPlan, stepMs: number): number {
  const warm = Math.max(plan.warmupMs, plan.warmupSteps * stepMs);
  return warm + plan.windows * Math.max(plan.windowMs, stepMs);
}

/** Process CPU time (user + system, all threads) in milliseconds. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * What the two loops below share: the warm-up record and each window's rate, length and CPU share.
 * The loops themselves stay separate so a synchronous step is never timed through an await.
 */
class WindowLog {
  private readonly rates: number[] = [];
  private readonly steps: number[] = [];
  private readonly seconds: number[] = [];
  private readonly cpuShare: number[] = [];
  private warmup: WindowResult['warmup'] = { steps: 0, seconds: 0 };

  constructor(private readonly unitsPerStep: number) {}

  warmedUp(steps: number, t0: number, t: number): void {
    this.warmup = { steps, seconds: (t - t0) / 1000 };
  }

  window(steps: number, t0: number, t: number, cpu0: number): void {
    const s = (t - t0) / 1000;
    this.cpuShare.push((cpuMs() - cpu0) / (t - t0));
    this.rates.push((steps * this.unitsPerStep) / s);
    this.steps.push(steps);
    this.seconds.push(s);
  }

  result(): WindowResult {
    const summary = summarize(this.rates);
    const { rates, steps, seconds, cpuShare, warmup } = this;
    return { rates, steps, seconds, cpuShare, warmup, median: summary.median, summary };
  }
}

/** Runs a synchronous step function under the plan. */
export function runWindows(step: () => void, unitsPerStep: number, plan: WindowPlan): WindowResult {
  const log = new WindowLog(unitsPerStep);
  let t0 = performance.now();
  let n = 0;
  let t = t0;
  while (n < plan.warmupSteps || t - t0 < plan.warmupMs) {
    step();
    n++;
    t = performance.now();
  }
  log.warmedUp(n, t0, t);
  for (let w = 0; w < plan.windows; w++) {
    const c0 = cpuMs();
    t0 = performance.now();
    n = 0;
    do {
      step();
      n++;
      t = performance.now();
    } while (t - t0 < plan.windowMs);
    log.window(n, t0, t, c0);
  }
  return log.result();
}

/** The same method for asynchronous steps (communication benchmarks). */
export async function runWindowsAsync(step: () => Promise<void>, unitsPerStep: number, plan: WindowPlan): Promise<WindowResult> {
  const log = new WindowLog(unitsPerStep);
  let t0 = performance.now();
  let n = 0;
  let t = t0;
  while (n < plan.warmupSteps || t - t0 < plan.warmupMs) {
    await step();
    n++;
    t = performance.now();
  }
  log.warmedUp(n, t0, t);
  for (let w = 0; w < plan.windows; w++) {
    const c0 = cpuMs();
    t0 = performance.now();
    n = 0;
    do {
      await step();
      n++;
      t = performance.now();
    } while (t - t0 < plan.windowMs);
    log.window(n, t0, t, c0);
  }
  return log.result();
}

/** Pools two results of the same measurement (e.g. rounds run in separate processes). */
export function mergeWindows(a: WindowResult, b: WindowResult): WindowResult {
  const rates = [...a.rates, ...b.rates];
  const summary = summarize(rates);
  return {
    rates,
    steps: [...a.steps, ...b.steps],
    seconds: [...a.seconds, ...b.seconds],
    cpuShare: [...(a.cpuShare ?? []), ...(b.cpuShare ?? [])],
    warmup: { steps: a.warmup.steps + b.warmup.steps, seconds: a.warmup.seconds + b.warmup.seconds },
    median: summary.median,
    summary,
  };
}
