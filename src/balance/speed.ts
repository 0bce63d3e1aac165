/**
 * This rank's measured times, as an exponential moving average over the run and a mean since the
 * last decision: ms per sample of the work that scales with its share (forward + backward), and
 * ms per step of the busy time that does not (the gradient exchange, the optimizer, the work
 * between steps; never the time blocked waiting for peers). The run's first step (warm-up:
 * allocation, JIT) is left out.
 */
export class SpeedMeter {
  private emaValue = NaN;
  private emaFixed = NaN;
  private windowSum = 0;
  private windowSamples = 0;
  private windowFixed = 0;
  private windowSteps = 0;
  /** Σ arrival² (scaled + fixed, ms²) since the last reset: the spread of when this rank reaches the barrier. */
  private windowSquares = 0;

  /** `warmupStep`: the first step this process takes (a resumed run's is not 0); it is not measured. */
  constructor(private readonly alpha = 0.3, private readonly warmupStep = 0) {}

  observe(step: number, samples: number, scaledMs: number, fixedMs = 0): void {
    if (step === this.warmupStep || samples <= 0 || !(scaledMs >= 0)) return;
    const fixed = fixedMs >= 0 ? fixedMs : 0;
    const perSample = scaledMs / samples;
    this.emaValue = Number.isNaN(this.emaValue) ? perSample : this.alpha * perSample + (1 - this.alpha) * this.emaValue;
    this.emaFixed = Number.isNaN(this.emaFixed) ? fixed : this.alpha * fixed + (1 - this.alpha) * this.emaFixed;
    this.windowSum += scaledMs;
    this.windowSamples += samples;
    this.windowFixed += fixed;
    this.windowSquares += (scaledMs + fixed) ** 2;
    this.windowSteps++;
  }

  /** ms per sample, moving average. */
  get ema(): number {
    return this.emaValue;
  }

  /** ms per step that does not scale with the share, moving average. */
  get fixedEma(): number {
    return this.emaFixed;
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

  /** Standard deviation of this rank's busy time per step (scaled + fixed) since the last reset: its step-to-step jitter at a constant share (0 with fewer than 2 steps). */
  get jitterMs(): number {
    const n = this.windowSteps;
    if (n < 2) return 0;
    const mean = (this.windowSum + this.windowFixed) / n;
    return Math.sqrt(Math.max(0, (this.windowSquares - n * mean * mean) / (n - 1)));
  }

  resetWindow(): void {
    this.windowSquares = 0;
    this.windowSum = 0;
    this.windowSamples = 0;
    this.windowFixed = 0;
    this.windowSteps = 0;
  }
}
