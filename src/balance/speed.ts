import { mean, median, stdev, sum } from '../util/stats.js';
import { SpeedTrend } from './speed_trend.js';

/** One measured step: its samples, the busy ms that scale with them, and the busy ms that do not. */
interface StepTimes {
  samples: number;
  scaledMs: number;
  fixedMs: number;
}

/**
 * This rank's measured times, as a mean since the last decision (the window) and a trend over the
 * run's windows (speed_trend.ts): ms per sample of the work that scales with its share (forward +
 * backward), and ms per step of the busy time that does not (the gradient exchange, the optimizer,
 * the work between steps, and forward and backward's own per-step overhead; never the time blocked
 * waiting for peers). The run's first step (warm-up: allocation, JIT) is left out. Windows, not
 * steps, feed the trend: a window is a ratio of sums over its steps, so one slow step (a GC pause,
 * a neighbour's burst) is diluted by its window.
 *
 * A window counts from where it settled: when its later half differs from its earlier half by
 * more than a quarter and beyond the halves' noise, only the later half is measured. Warm-up
 * (a process under a CPU quota compiles and allocates for several steps), the first steps at a
 * new share (buffers of the new size) and a slowdown in the middle of a window are a drift, not
 * the rank's speed; the later half is what the next window will look like.
 */
export class SpeedMeter {
  private readonly trendOf = new SpeedTrend();
  private steps: StepTimes[] = [];

  /** `warmupStep`: the first step this process takes (a resumed run's is not 0); it is not measured. */
  constructor(private readonly warmupStep = 0) {}

  observe(step: number, samples: number, scaledMs: number, fixedMs = 0): void {
    if (step === this.warmupStep || samples <= 0 || !(scaledMs >= 0)) return;
    this.steps.push({ samples, scaledMs, fixedMs: fixedMs >= 0 ? fixedMs : 0 });
  }

  /** ms per sample, the trend over the closed windows (NaN before the first). */
  get trend(): number {
    return this.trendOf.msPerSample;
  }

  /** ms per step that does not scale with the share, the trend over the closed windows. */
  get fixedTrend(): number {
    return this.trendOf.fixedMs + this.trendOf.overheadMs;
  }

  /** ms per sample over the window's settled steps (NaN if nothing was measured). */
  get windowMean(): number {
    const s = this.settled();
    const samples = sum(s.map((x) => x.samples));
    return samples > 0 ? sum(s.map((x) => x.scaledMs)) / samples : NaN;
  }

  /** Fixed ms per step over the window's settled steps (NaN if nothing was measured). */
  get fixedWindowMean(): number {
    return mean(this.settled().map((x) => x.fixedMs));
  }

  /** Samples per step since the last reset (0 if nothing was measured). */
  get samplesPerStep(): number {
    return this.steps.length > 0 ? sum(this.steps.map((x) => x.samples)) / this.steps.length : 0;
  }

  /**
   * This rank's step-to-step jitter at a constant share, over the window's settled steps: the
   * median absolute difference of consecutive busy times ÷ 0.954 (the standard deviation for normal
   * noise). Differences of neighbours ignore a slow drift, which is not jitter, and the median
   * ignores a rare long pause, which costs the same whatever the share. 0 with fewer than 3 steps.
   */
  get jitterMs(): number {
    const busy = this.settled().map(busyOf);
    if (busy.length < 3) return 0;
    return median(busy.slice(1).map((b, i) => Math.abs(b - busy[i]))) / MEDIAN_DIFF_TO_SD;
  }

  /**
   * Folds the window's settled steps into the trend (an empty window leaves it) and starts a new
   * window. `factor` converts its wall times to times at the rank's planned capacity (capacity.ts).
   */
  closeWindow(factor = 1): void {
    const s = this.settled();
    if (s.length > 0) {
      const n = s.length;
      // The standard error of the window's ms per step, from its steps' spread.
      const noiseMs = (factor * stdev(s.map(busyOf))) / Math.sqrt(n);
      const perStep = (of: (x: StepTimes) => number): number => (factor * sum(s.map(of))) / n;
      this.trendOf.fold({ samples: sum(s.map((x) => x.samples)) / n, scaledMs: perStep((x) => x.scaledMs), fixedMs: perStep((x) => x.fixedMs), noiseMs });
    }
    this.steps = [];
  }

  /** The window's steps, or its later half when the window drifted (see the class comment). */
  private settled(): StepTimes[] {
    const n = this.steps.length;
    if (n < 2 * MIN_HALF) return this.steps;
    const cut = n >> 1;
    const early = this.steps.slice(0, cut).map(busyOf);
    const late = this.steps.slice(cut).map(busyOf);
    const gap = Math.abs(mean(late) - mean(early));
    const noise = Math.sqrt(stdev(early) ** 2 / early.length + stdev(late) ** 2 / late.length);
    return gap > DRIFT_FRACTION * mean(late) && gap > DRIFT_SIGMAS * noise ? this.steps.slice(cut) : this.steps;
  }
}

/** For normal noise the median |x_t − x_(t−1)| is 0.6745 · √2 · σ. */
const MEDIAN_DIFF_TO_SD = 0.954;
/** A window's halves need this many steps each to be compared… */
const MIN_HALF = 3;
/** …and must differ by this fraction of the later half and this many standard errors to be a drift (as speed_trend.ts's change of speed). */
const DRIFT_FRACTION = 0.25;
const DRIFT_SIGMAS = 4;

function busyOf(s: StepTimes): number {
  return s.scaledMs + s.fixedMs;
}
