/**
 * The gradient-outlier rule: is one rank's local gradient norm far out of line — a scaled or noisy
 * gradient about to be averaged in — or just a hard batch?
 *
 * Healthy gradient norms are heavy-tailed, and more so the smaller the batch: late in a 2-worker
 * MNIST run at batch 16, one rank's norm is often 100–600× the other rank's *at the same step*,
 * because the other batch happened to be all easy samples (a norm near 0). Against a window of
 * recent norms the same run never goes past ~11× (scripts/record-grad-norms.mjs records such runs;
 * test/train/loop/grad_outlier.test.ts replays them). So a rank's norm is compared with two robust
 * baselines, and must exceed both:
 *   - its own recent history: the median of its last `window` norms (a rank whose shard always
 *     gives larger gradients is not an outlier);
 *   - the other ranks: the median of their last `window` norms and this step's.
 * and the bar it must clear is
 *   - a spike: one step above `spikeRatio` × the baseline, or
 *   - a sustained excess: `sustainRatio` × the baseline for `patience` consecutive steps,
 * each raised with the measured spread of the window's norms (the log-ratio of its 90th percentile
 * to its median, times `spreadFactor`) — the spread grows as batches shrink, so the bar does too.
 * Until `warmup` steps of history exist the rule compares with what there is, spikes only.
 * The baseline never drops below `floorFraction` of the run's early level (the median of every
 * rank's first `window` norms): near a loss of zero (a memorised training set) most batches' norms
 * collapse toward 0, and a batch that is not yet memorised is hundreds of times above them while
 * still far below the norms the run started with — nothing is out of line.
 */
import { median } from '../../util/stats.js';

export interface OutlierOptions {
  window: number;
  warmup: number;
  spikeRatio: number;
  sustainRatio: number;
  patience: number;
  /** A spike must be this many spreads above the baseline (sustained: half as many). */
  spreadFactor: number;
  /** The baseline's floor, as a share of the run's early norm level. */
  floorFraction: number;
}

export const OUTLIER_DEFAULTS: OutlierOptions = {
  window: 32,
  warmup: 5,
  spikeRatio: 100,
  sustainRatio: 10,
  patience: 3,
  spreadFactor: 6,
  floorFraction: 0.01,
};

export interface OutlierVerdict {
  rank: number;
  norm: number;
  /** The larger of the two baselines, and how many times above it the norm is. */
  baseline: number;
  ratio: number;
  /** `spike` (one step) or `sustained` (`patience` steps running). */
  kind: 'spike' | 'sustained';
  /** The ratio the norm had to clear. */
  bar: number;
}

/** Norm history of every rank and the rule's state; feed it each step's norms with `check`. */
export class GradientOutlierRule {
  readonly options: OutlierOptions;
  private readonly history: number[][];
  private readonly streak: number[];
  private readonly inEpisode: boolean[];
  /** The median of every rank's first `window` norms, once there are that many (the floor's scale). */
  private earlyLevel = 0;

  constructor(readonly worldSize: number, options: Partial<OutlierOptions> = {}) {
    this.options = { ...OUTLIER_DEFAULTS, ...options };
    this.history = Array.from({ length: worldSize }, () => []);
    this.streak = new Array<number>(worldSize).fill(0);
    this.inEpisode = new Array<boolean>(worldSize).fill(false);
  }

  /**
   * One step's norms, by position in `ranks`; returns the ranks that just became outliers (once per
   * episode: a rank is named again only after it was back in line).
   */
  check(norms: readonly number[], ranks: readonly number[]): OutlierVerdict[] {
    const o = this.options;
    const found: OutlierVerdict[] = [];
    const spread = this.spread();
    for (let i = 0; i < norms.length; i++) {
      const norm = norms[i];
      const own = this.history[i];
      const others = norms.flatMap((n, j) => (j === i ? [] : [n, ...this.history[j]]));
      const baseline = Math.max(own.length > 0 ? median(own) : 0, median(others), o.floorFraction * this.earlyLevel);
      const warm = own.length >= o.warmup;
      const ratio = baseline > 0 ? norm / baseline : 0;
      const spikeBar = Math.max(o.spikeRatio, Math.exp(o.spreadFactor * spread));
      const sustainBar = Math.max(o.sustainRatio, Math.exp((o.spreadFactor / 2) * spread));
      this.streak[i] = warm && ratio > sustainBar ? this.streak[i] + 1 : 0;
      const spike = ratio > spikeBar;
      const sustained = this.streak[i] >= o.patience;
      if ((spike || sustained) && !this.inEpisode[i]) {
        found.push({ rank: ranks[i], norm, baseline, ratio, kind: spike ? 'spike' : 'sustained', bar: spike ? spikeBar : sustainBar });
      }
      this.inEpisode[i] = spike || sustained || (this.inEpisode[i] && ratio > sustainBar);
    }
    for (let i = 0; i < norms.length; i++) {
      if (!Number.isFinite(norms[i])) continue;
      this.history[i].push(norms[i]);
      if (this.history[i].length > o.window) this.history[i].shift();
    }
    if (this.earlyLevel === 0 && this.history.every((h) => h.length >= o.window)) this.earlyLevel = median(this.history.flat());
    return found;
  }

  /** log(p90 / p50) of every rank's recent norms (0 until there is a window's worth). */
  private spread(): number {
    const all = this.history.flat().filter((n) => n > 0);
    if (all.length < this.options.warmup * this.worldSize) return 0;
    all.sort((a, b) => a - b);
    const at = (q: number): number => all[Math.min(all.length - 1, Math.floor(q * all.length))];
    return Math.log(at(0.9) / at(0.5));
  }
}
