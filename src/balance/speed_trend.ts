import { sum } from '../util/stats.js';

/** One closed measuring window of a rank: per-step means over its steps. */
export interface WindowFigures {
  samples: number;
  /** ms of forward + backward (the work that grows with the share). */
  scaledMs: number;
  /** ms of the rest of the busy time. */
  fixedMs: number;
  /** The standard error of `scaledMs` (its steps' spread ÷ √steps). */
  noiseMs: number;
}

/**
 * What a rank's step costs as a function of its share, from its recent windows: scaled ms per step
 * = overhead + ms-per-sample × samples. Forward and backward of n samples do not cost n times one
 * sample: every layer pays per-step costs whatever n is. A plain ratio (ms ÷ samples) charges those
 * to the samples, so a rank whose share shrinks looks slower per sample, is given fewer samples
 * still, and slides to the floor. Once the windows have seen shares far enough apart, a weighted
 * least-squares line separates overhead and per-sample cost, if it fits them well; else the ratio.
 *
 * Newer windows weigh more (halving with age), so the trend follows drift; a window that departs
 * from the line's prediction by more than a quarter and beyond its noise starts the line afresh:
 * the node's speed changed, and the next decision follows at once.
 */
export class SpeedTrend {
  /** Since the last change of speed, oldest first. */
  private windows: WindowFigures[] = [];

  fold(w: WindowFigures): void {
    if (this.windows.length > 0 && this.departs(w)) this.windows = [];
    this.windows.push(w);
    if (this.windows.length > KEPT) this.windows.shift();
  }

  /**
   * Whether `w` is a new speed: far from what the trend predicts for its samples per step. Before
   * a line separates the overhead, a window at another share is predicted only within bounds: all
   * of the time per sample (the ratio × its samples) or all of it per step (the windows' mean time
   * per step). A rank whose share shrank takes longer per sample because of the overhead, and
   * that is not a change of speed: without the bounds it would drop the windows the line needs.
   */
  private departs(w: WindowFigures): boolean {
    const { perSample, overhead, line } = this.fit();
    const atShare = overhead + perSample * w.samples;
    const perStep = line ? atShare : this.weightedMean((x) => x.scaledMs);
    const low = Math.min(atShare, perStep);
    const high = Math.max(atShare, perStep);
    const gap = w.scaledMs < low ? low - w.scaledMs : w.scaledMs > high ? w.scaledMs - high : 0;
    return gap > CHANGE_SIGMAS * w.noiseMs && gap > CHANGE_FRACTION * (w.scaledMs < low ? low : high);
  }

  /** ms per additional sample (NaN before the first window). */
  get msPerSample(): number {
    return this.fit().perSample;
  }

  /** ms per step of forward + backward that does not grow with the share. */
  get overheadMs(): number {
    return this.fit().overhead;
  }

  /** ms per step of the rest of the busy time. */
  get fixedMs(): number {
    return this.weightedMean((x) => x.fixedMs);
  }

  private weightedMean(of: (x: WindowFigures) => number): number {
    const w = this.weights();
    return this.windows.reduce((a, x, i) => a + w[i] * of(x), 0) / sum(w);
  }

  /** The line (`line`: overhead and per-sample cost told apart) or the ratio (all of it per sample). */
  private fit(): { perSample: number; overhead: number; line: boolean } {
    if (this.windows.length === 0) return { perSample: NaN, overhead: NaN, line: false };
    const w = this.weights();
    const n = this.weightedMean((x) => x.samples);
    const s = this.weightedMean((x) => x.scaledMs);
    const ratio = { perSample: s / n, overhead: 0, line: false };
    const samples = this.windows.map((x) => x.samples);
    if (this.windows.length < MIN_FIT || Math.min(...samples) > SPREAD * Math.max(...samples)) return ratio;
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    this.windows.forEach((x, i) => {
      sxy += w[i] * (x.samples - n) * (x.scaledMs - s);
      sxx += w[i] * (x.samples - n) ** 2;
      syy += w[i] * (x.scaledMs - s) ** 2;
    });
    const perSample = sxy / sxx;
    const overhead = s - perSample * n;
    const explained = (sxy * sxy) / (sxx * syy);
    // A line the noise drew (it explains little of the windows' differences, or is past the
    // physical: no cost per sample, negative overhead) would move the shares by noise: the ratio.
    return perSample > 0 && overhead >= 0 && explained >= MIN_EXPLAINED ? { perSample, overhead, line: true } : ratio;
  }

  private weights(): number[] {
    return this.windows.map((_, i) => 0.5 ** (this.windows.length - 1 - i));
  }
}

/** Windows kept (their weights halve with age: the oldest of six counts 1/32 of the newest). */
const KEPT = 6;
/** A line needs this many windows whose samples per step span at least this ratio (smallest ÷ largest)… */
const MIN_FIT = 3;
const SPREAD = 0.8;
/** …and must explain this fraction of their variance (weighted R²). */
const MIN_EXPLAINED = 0.8;
/** A window this many standard errors and this fraction away from the prediction is a new speed. */
const CHANGE_SIGMAS = 4;
const CHANGE_FRACTION = 0.25;
