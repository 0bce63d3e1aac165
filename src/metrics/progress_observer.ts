import type { EvalRecord, SampleRecord, StepRecord, TrainObserver } from './records.js';
import { Progress } from './progress.js';
import { clusterSamples } from './throughput.js';

/**
 * The training progress bar: the loss as an exponential moving average over about the last 50 steps
 * (labelled so: one step's loss is noisy), the learning rate, the gradient norm (before clipping,
 * when the loop measured it) and the cluster's measured throughput (throughput.ts:
 * this rank's samples × the training ranks, or a server's workers' samples, over this rank's step
 * times). A parameter server's bar is labelled `server`.
 */
export class ProgressObserver implements TrainObserver {
  private progress: Progress | null = null;
  private smoothLoss = NaN;
  private windowSamples = 0;
  private windowMs = 0;
  private rate = 0;

  constructor(private readonly trainers = 1, private readonly label = 'train') {}

  onStart(info: { totalSteps: number }): void {
    this.progress = new Progress({ label: this.label, total: info.totalSteps });
  }

  onStep(r: StepRecord): void {
    this.smoothLoss = Number.isNaN(this.smoothLoss) ? r.loss : 0.98 * this.smoothLoss + 0.02 * r.loss; // ~50-step memory
    this.windowSamples += clusterSamples(r, this.trainers);
    this.windowMs += r.computeMs + r.commMs + r.waitMs;
    if (this.windowMs > 500) {
      this.rate = (this.windowSamples / this.windowMs) * 1000;
      this.windowSamples = 0;
      this.windowMs = 0;
    }
    // Until a first full window, show the rate measured so far rather than 0.
    const rate = this.rate > 0 || this.windowMs === 0 ? this.rate : (this.windowSamples / this.windowMs) * 1000;
    this.progress?.update(r.step + 1, stepFields(this.smoothLoss, r, rate));
  }

  onEval(r: EvalRecord): void {
    const acc = r.accuracy === null ? '' : `, accuracy ${(r.accuracy * 100).toFixed(2)}%`;
    const ppl = r.perplexity != null ? `, perplexity ${r.perplexity.toFixed(2)}` : '';
    this.progress?.log(`step ${r.step}: test loss ${r.loss.toFixed(4)}${acc}${ppl}`);
  }

  onSample(r: SampleRecord): void {
    this.progress?.log(`step ${r.step} sample: ${JSON.stringify(r.prompt + r.text)}`);
  }

  onEnd(): void {
    this.progress?.stop();
  }
}

/** The fields beside the bar, in the order a reader scans them. */
export function stepFields(smoothLoss: number, r: StepRecord, samplesPerSecond: number): Record<string, string> {
  const fields: Record<string, string> = { 'loss (avg 50)': smoothLoss.toFixed(4), lr: r.lr.toExponential(2) };
  if (r.gradNorm !== undefined) fields['grad norm'] = r.gradNorm.toPrecision(3);
  fields['samples/s'] = String(Math.round(samplesPerSecond));
  return fields;
}
