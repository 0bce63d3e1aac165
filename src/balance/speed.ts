import { quantile } from '../util/stats.js';
import { SpeedTrend } from './speed_trend.js';

/**
 * This rank's measured times, as a mean since the last decision (the window) and a trend over the
 * run's windows (speed_trend.ts): ms per sample of the work that scales with its share (forward +
 * backward), and ms per step of the busy time that does not (the gradient exchange, the optimizer,
 * the work between steps, and forward and backward's own per-step overhead; never the time blocked
 * waiting for peers). The run's first step (warm-up: allocation, JIT) is left out. Windows, not
 * steps, feed the trend: a window is a ratio of sums over its steps, so one slow step (a GC pause,
 * a neighbour's burst) is diluted by its window.
 */
export class SpeedMeter {
  private readonly trendOf = new SpeedTrend();
  private windowSum = 0;
  private windowSamples = 0;
  private windowFixed = 0;
  private windowSteps = 0;
  /** Each step's busy time (scaled + fixed, ms) since the last reset: when this rank reaches the barrier. */
  private windowBusy: number[] = [];

  /** `warmupStep`: the first step this process takes (a resumed run's is not 0); it is not measured. */
  constructor(private readonly warmupStep = 0) {}

  observe(step: number, samples: number, scaledMs: number, fixedMs = 0): void {
    if (step === this.warmupStep || samples <= 0 || !(scaledMs >= 0)) return;
    const fixed = fixedMs >= 0 ? fixedMs : 0;
    this.windowSum += scaledMs;
    this.windowSamples += samples;
    this.windowFixed += fixed;
    this.windowBusy.push(scaledMs + fixed);
    this.windowSteps++;
  }

  /** ms per sample, the trend over the closed windows (NaN before the first). */
  get trend(): number {
    return this.trendOf.msPerSample;
  }

  /** ms per step that does not scale with the share, the trend over the closed windows. */
  get fixedTrend(): number {
    return this.trendOf.fixedMs + this.trendOf.overheadMs;
  }

  /** ms per sample since the last reset (NaN if nothing was measured). */
  get windowMean(): number {
    return this.windowSamples > 0 ? this.windowSum / this.windowSamples : NaN;
  }

  /** Fixed ms per step since the last reset (NaN if nothing was measured). */
  get fixedWindowMean(): number {
    return this.windowSteps > 0 ? this.windowFixed / this.windowSteps : NaN;
  }

  /** Samples per step since the last reset (0 if nothing was measured). */
  get samplesPerStep(): number {
    return this.windowSteps > 0 ? this.windowSamples / this.windowSteps : 0;
  }

  /**
   * This rank's step-to-step jitter at a constant share: the spread of its busy time per step since
   * the last reset, robustly: the interquartile range ÷ 1.349 (the standard deviation for normal
   * noise, but a rare long pause, which costs the same whatever the share, does not inflate it).
   * 0 with fewer than 3 steps.
   */
  get jitterMs(): number {
    if (this.windowBusy.length < 3) return 0;
    return (quantile(this.windowBusy, 0.75) - quantile(this.windowBusy, 0.25)) / IQR_TO_SD;
  }

  /** The standard deviation of the busy time per step since the last reset (0 with fewer than 2 steps): what a window's mean can be off by. */
  private get spreadMs(): number {
    const n = this.windowBusy.length;
    if (n < 2) return 0;
    const mean = this.windowBusy.reduce((a, b) => a + b, 0) / n;
    return Math.sqrt(this.windowBusy.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  }

  /** Folds the window into the trend (an empty window leaves it) and starts a new window. */
  closeWindow(): void {
    const steps = this.windowSteps;
    if (steps > 0) {
      // The standard error of the window's ms per step, from its steps' spread.
      const noiseMs = this.spreadMs / Math.sqrt(steps);
      this.trendOf.fold({ samples: this.windowSamples / steps, scaledMs: this.windowSum / steps, fixedMs: this.windowFixed / steps, noiseMs });
    }
    this.resetWindow();
  }

  private resetWindow(): void {
    this.windowBusy = [];
    this.windowSum = 0;
    this.windowSamples = 0;
    this.windowFixed = 0;
    this.windowSteps = 0;
  }
}

const IQR_TO_SD = 1.349;
