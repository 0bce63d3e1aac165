/**
 * This rank's measured compute time per sample: an exponential moving average over the run and
 * the mean since the last decision. The run's first step (warm-up: allocation, JIT) is left out.
 */
export class SpeedMeter {
  private emaValue = NaN;
  private windowSum = 0;
  private windowSamples = 0;

  /** `warmupStep`: the first step this process takes (a resumed run's is not 0); it is not measured. */
  constructor(private readonly alpha = 0.3, private readonly warmupStep = 0) {}

  observe(step: number, samples: number, computeMs: number): void {
    if (step === this.warmupStep || samples <= 0 || !(computeMs >= 0)) return;
    const perSample = computeMs / samples;
    this.emaValue = Number.isNaN(this.emaValue) ? perSample : this.alpha * perSample + (1 - this.alpha) * this.emaValue;
    this.windowSum += computeMs;
    this.windowSamples += samples;
  }

  get ema(): number {
    return this.emaValue;
  }

  /** ms per sample since the last reset (NaN if nothing was measured). */
  get windowMean(): number {
    return this.windowSamples > 0 ? this.windowSum / this.windowSamples : NaN;
  }

  resetWindow(): void {
    this.windowSum = 0;
    this.windowSamples = 0;
  }
}
