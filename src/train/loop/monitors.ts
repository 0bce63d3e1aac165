/**
 * Run monitors: the checks that guard every training run (single process or cluster), and the
 * events.jsonl they report to.
 *
 * Each step, after backward and before any gradient leaves the process, a rank summarises its
 * health in three numbers (the time it took to get there, its count of non-finite gradient values,
 * its local gradient L2 norm). A strategy that `sharesHealth` (allreduce) puts every rank's three
 * numbers into the few bytes it already all-reduces at the start of the step, so every rank sees
 * the whole cluster's health before the gradients move, and reaches the same verdict:
 *
 *   non-finite-gradient (fatal)   a rank's gradient holds NaN or ±Inf: every rank stops with an
 *                                 error naming it, before the bad gradient is averaged in;
 *   straggler (warning)           a rank's step time is > `stragglerRatio` × the median of the other
 *                                 ranks and ≥ `stragglerMinExcessMs` slower, for
 *                                 `stragglerPatience` consecutive steps (one slow step under load
 *                                 is not a straggler);
 *   gradient-outlier (warning)    a rank's local gradient norm is far above both its own recent
 *                                 norms and the other ranks' — for one step by a wide margin, or
 *                                 for several steps by a smaller one (grad_outlier.ts: scaled or
 *                                 noisy gradients, not a hard batch);
 * and after the step, on the loss every rank agrees on:
 *   non-finite-loss (fatal)       the loss is NaN or ±Inf;
 *   loss-divergence (warning)     the loss, smoothed over ~10 steps (an EMA, so one easy batch
 *                                 does not set the bar), is > `divergenceFactor` × its lowest
 *                                 value so far, for `divergencePatience` consecutive steps; the
 *                                 lowest value counts as at least `divergenceFloor` of the
 *                                 smoothed loss where the rule starts (a loss near zero that
 *                                 moves from 1e-4 to 1e-3 is not diverging).
 * A strategy that does not share health gets the checks of its own rank only.
 *
 * Failures found elsewhere are reported to the same log by the worker (`MonitorLog.failure`): a
 * peer's deadline expiring (peer-timeout: a hung rank), a lost connection (peer-lost: a crashed or
 * killed rank), parameter checksums that differ (parameter-divergence).
 *
 * Cluster-wide verdicts are written once, by rank 0 (every rank reaches them); failures are written
 * by each rank that saw them. Warnings also go to stderr as one line.
 */
import { EventLog } from '../../metrics/events.js';
import { sumOfSquares } from '../../tensor/scalar.js';
import type { Storage } from '../../tensor/storage.js';
import { GradientOutlierRule, type OutlierOptions } from './grad_outlier.js';
import { median } from '../../util/stats.js';
import { PeerError, SmolError, TimeoutError } from '../../util/errors.js';

export type Rule =
  | 'non-finite-gradient'
  | 'straggler'
  | 'gradient-outlier'
  | 'non-finite-loss'
  | 'loss-divergence'
  | 'peer-timeout'
  | 'peer-lost'
  | 'parameter-divergence'
  | 'error';

export type Severity = 'warning' | 'fatal';

export interface Detection {
  rule: Rule;
  severity: Severity;
  /** The rank(s) at fault, when known. */
  ranks: number[];
  step: number | null;
  detail: string;
}

export interface Injection {
  fault: string;
  spec: string;
  rank: number;
  step: number;
  detail: string;
}

/** A monitor's fatal verdict; every rank throws the same one. */
export class MonitorError extends SmolError {
  constructor(readonly rule: Rule, readonly ranks: number[], readonly step: number, message: string) {
    super('MONITOR', message);
  }
}

/**
 * The monitors' and faults' part of events.jsonl (metrics/events.ts: the same file and envelope as
 * the run's other events): one `detection` line per rule that fired, one `fault_injected` line per
 * injected fault, each written at once.
 */
/** How many times the same warning (rule and ranks) is printed before the rest are only counted. */
export const MAX_PRINTED = 3;

export class MonitorLog {
  /** The step the run was last known to be at (the monitors note it), for failures found outside the loop. */
  lastStep: number | null = null;
  private out: EventLog | null = null;
  private readonly recorded = new WeakSet<object>();
  /** Warnings printed and held back, by rule and ranks (the rest are summarised at close). */
  private readonly printed = new Map<string, { rule: Rule; ranks: number[]; count: number; held: number; first: number | null; last: number | null }>();

  /** `file` null: nothing written (warnings still printed unless `quiet`). */
  constructor(
    private readonly file: string | null,
    readonly rank: number,
    private readonly quiet = false,
  ) {}

  detection(d: Detection): void {
    this.write({ kind: 'detection', observer: this.rank, ...d });
    if (d.severity === 'warning' && !this.quiet) this.warn(d);
  }

  /** Prints a warning unless the same rule has named the same ranks MAX_PRINTED times already. */
  private warn(d: Detection): void {
    const key = `${d.rule}:${d.ranks.join(',')}`;
    const seen = this.printed.get(key) ?? { rule: d.rule, ranks: d.ranks, count: 0, held: 0, first: null, last: null };
    this.printed.set(key, seen);
    seen.count++;
    if (seen.count <= MAX_PRINTED) {
      process.stderr.write(`smolcluster: warning: ${d.detail}\n`);
      return;
    }
    seen.held++;
    seen.first ??= d.step;
    seen.last = d.step;
  }

  /** One line per warning that was held back: how many more times it fired, and over which steps. */
  private summarise(): void {
    for (const s of this.printed.values()) {
      if (s.held === 0) continue;
      const who = s.ranks.length ? ` naming rank${s.ranks.length > 1 ? 's' : ''} ${s.ranks.join(', ')}` : '';
      const steps = s.first === null ? '' : ` (steps ${s.first}–${s.last})`;
      process.stderr.write(`smolcluster: warning: ${s.rule}${who} fired ${s.held} more time${s.held > 1 ? 's' : ''}${steps}; all are in events.jsonl\n`);
      s.held = 0;
    }
  }

  injected(i: Injection): void {
    this.write({ kind: 'fault_injected', ...i });
  }

  /** Records a run-ending error as the detection it stands for (once per error object). */
  failure(err: unknown, step: number | null = this.lastStep): void {
    if (typeof err === 'object' && err !== null) {
      if (this.recorded.has(err)) return;
      this.recorded.add(err);
    }
    if (err instanceof MonitorError) return; // written when it was found
    this.write({ kind: 'detection', observer: this.rank, ...classify(err), step });
  }

  /** Marks an error as already recorded (a monitor's own). */
  markRecorded(err: object): void {
    this.recorded.add(err);
  }

  close(): void {
    this.summarise();
    this.out?.close();
    this.out = null;
  }

  private write(record: { kind: string } & Record<string, unknown>): void {
    if (this.file === null) return;
    // Opened on the first event, after the run's owner has reset the file.
    this.out ??= new EventLog(this.file);
    const { kind, ...fields } = record;
    this.out.emit(kind, fields);
  }
}

/** The rule a run-ending error corresponds to, and the ranks it names. */
export function classify(err: unknown): Omit<Detection, 'step'> {
  const detail = err instanceof Error ? err.message : String(err);
  if (err instanceof TimeoutError) return { rule: 'peer-timeout', severity: 'fatal', ranks: [...err.ranks], detail };
  if (err instanceof PeerError) return { rule: 'peer-lost', severity: 'fatal', ranks: err.rank >= 0 ? [err.rank] : [], detail };
  if (err instanceof MonitorError) return { rule: err.rule, severity: 'fatal', ranks: [...err.ranks], detail };
  if (err instanceof SmolError && err.code === 'DIVERGED') {
    return { rule: 'parameter-divergence', severity: 'fatal', ranks: [...((err as SmolError & { ranks?: number[] }).ranks ?? [])], detail };
  }
  if (err instanceof SmolError && err.code === 'CLOSED') return { rule: 'peer-lost', severity: 'fatal', ranks: [], detail };
  return { rule: 'error', severity: 'fatal', ranks: [], detail };
}

export interface MonitorOptions {
  stragglerRatio: number;
  stragglerMinExcessMs: number;
  stragglerPatience: number;
  outlier: Partial<OutlierOptions>;
  divergenceFactor: number;
  divergencePatience: number;
  /** Steps before the loss-divergence rule starts (the first losses are noisy). */
  divergenceWarmup: number;
  /** The lowest loss the rule compares with is at least this share of the smoothed loss where it starts. */
  divergenceFloor: number;
}

export const MONITOR_DEFAULTS: MonitorOptions = {
  stragglerRatio: 3,
  stragglerMinExcessMs: 20,
  stragglerPatience: 5,
  outlier: {},
  divergenceFactor: 10,
  divergencePatience: 3,
  divergenceWarmup: 5,
  divergenceFloor: 0.01,
};

/** Floats per rank in the shared health vector: ready ms, non-finite count, gradient norm. */
export const HEALTH_WIDTH = 3;

export class RunMonitors {
  readonly options: MonitorOptions;
  private readonly own = new Float32Array(HEALTH_WIDTH);
  private readonly streak: number[];
  private readonly flagged: boolean[];
  private readonly outliers: GradientOutlierRule;
  private smoothLoss = NaN;
  private bestLoss = Infinity;
  private highLosses = 0;
  private diverging = false;
  /** The smoothed loss when the divergence rule starts (its floor's scale); NaN before. */
  private startLoss = NaN;

  /**
   * @param shared the strategy shares health (every rank sees the same verdicts; rank 0 records
   *   them); otherwise this rank checks and records its own health only.
   */
  constructor(
    readonly rank: number,
    readonly worldSize: number,
    private readonly events: MonitorLog | null = null,
    private readonly shared = false,
    options: Partial<MonitorOptions> = {},
  ) {
    this.options = { ...MONITOR_DEFAULTS, ...options };
    this.streak = new Array<number>(worldSize).fill(0);
    this.flagged = new Array<boolean>(worldSize).fill(false);
    this.outliers = new GradientOutlierRule(worldSize, this.options.outlier);
  }

  /**
   * After backward (and any injected fault), before communication: this rank's health. On a GPU
   * the sum of squares is reduced there and only that number is read (the values only when it is
   * not finite, to count them).
   */
  async beforeCommunication(step: number, readyMs: number, grads: Storage): Promise<void> {
    if (this.events) this.events.lastStep = step;
    // One pass of the backend's kernel; NaN or ±Inf anywhere makes the sum non-finite.
    const sumSq = await sumOfSquares(grads).read();
    let nonFinite = 0;
    if (!Number.isFinite(sumSq)) nonFinite = countNonFinite(await grads.read());
    this.own[0] = readyMs;
    this.own[1] = nonFinite;
    this.own[2] = nonFinite > 0 ? 0 : Math.sqrt(sumSq);
    if (!this.shared) this.checkHealth(step, this.own, [this.rank]);
  }

  /**
   * beforeCommunication for a process whose gradients never leave it (Strategy.gradients.sendsNothing) on a
   * device: the sum of squares is reduced there now and read without holding up the step; the
   * check runs when the value arrives (the loop awaits it one step later), throwing the same
   * MonitorError for the same step. The count of non-finite values is not taken (the gradients
   * are the next step's by then): the message gives the sum instead.
   */
  healthLater(step: number, grads: Storage): Promise<void> {
    if (this.events) this.events.lastStep = step;
    return sumOfSquares(grads).read().then((sumSq) => {
      if (Number.isFinite(sumSq)) return;
      const err = new MonitorError('non-finite-gradient', [this.rank], step,
        `non-finite gradient on rank ${this.rank} at step ${step} (its sum of squares is ${sumSq}); stopped one step later (read without stalling the device), nothing was communicated`);
      this.record({ rule: 'non-finite-gradient', severity: 'fatal', ranks: [this.rank], step, detail: err.message });
      this.events?.markRecorded(err);
      throw err;
    });
  }

  /** Writes this rank's health into its row of a rank-major vector (the other rows untouched). */
  fillHealth(all: Float32Array): void {
    all.set(this.own, this.rank * HEALTH_WIDTH);
  }

  /**
   * Checks the health rows of `ranks` (rank-major, HEALTH_WIDTH floats each; every rank by
   * default). Throws MonitorError on a non-finite gradient, naming the rank(s).
   */
  checkHealth(step: number, health: Float32Array, ranks: number[] = [...Array(this.worldSize).keys()], sentWithGradients = false): void {
    const row = (i: number, k: number): number => health[i * HEALTH_WIDTH + k];
    const bad = ranks.filter((_, i) => row(i, 1) > 0);
    if (bad.length > 0) {
      const counts = ranks.map((r, i) => (row(i, 1) > 0 ? `rank ${r}: ${row(i, 1)}` : '')).filter(Boolean).join(', ');
      const who = `rank${bad.length > 1 ? 's' : ''} ${bad.join(', ')}`;
      const err = new MonitorError('non-finite-gradient', bad, step,
        `non-finite gradient on ${who} at step ${step} (NaN/Inf values: ${counts}); ${sentWithGradients ? 'stopped before it was applied (it travelled with the gradients)' : 'stopped before it was communicated'}`);
      this.record({ rule: 'non-finite-gradient', severity: 'fatal', ranks: bad, step, detail: err.message });
      this.events?.markRecorded(err);
      throw err;
    }
    if (ranks.length < 2) return;
    const o = this.options;
    for (let i = 0; i < ranks.length; i++) {
      const others = (k: number): number => median(ranks.flatMap((_, j) => (j === i ? [] : [row(j, k)])));
      const ms = row(i, 0);
      const typical = others(0);
      const slow = ms > o.stragglerRatio * typical && ms - typical >= o.stragglerMinExcessMs;
      this.streak[i] = slow ? this.streak[i] + 1 : 0;
      if (!slow) this.flagged[i] = false;
      if (this.streak[i] >= o.stragglerPatience && !this.flagged[i]) {
        this.flagged[i] = true;
        this.record({
          rule: 'straggler', severity: 'warning', ranks: [ranks[i]], step,
          detail: `rank ${ranks[i]} is a straggler: ${ms.toFixed(1)} ms to reach the exchange at step ${step} vs a median of ` +
            `${typical.toFixed(1)} ms on the other ranks, ${o.stragglerPatience} steps running (rule: > ${o.stragglerRatio}× and ≥ ${o.stragglerMinExcessMs} ms slower)`,
        });
      }
    }
    this.checkOutliers(step, ranks.map((_, i) => row(i, 2)), ranks);
  }

  private checkOutliers(step: number, norms: number[], ranks: number[]): void {
    for (const v of this.outliers.check(norms, ranks)) {
      const how = v.kind === 'spike' ? 'at' : `for ${this.outliers.options.patience} steps to`;
      this.record({
        rule: 'gradient-outlier', severity: 'warning', ranks: [v.rank], step,
        detail: `rank ${v.rank}'s gradient norm ${v.norm.toPrecision(3)} ${how} step ${step} is ${v.ratio.toFixed(0)}× its recent ` +
          `level ${v.baseline.toPrecision(3)} (its own and the other ranks' recent norms; rule: > ${v.bar.toFixed(0)}×)`,
      });
    }
  }

  /** After the step, on the loss every rank agrees on. Throws MonitorError on a non-finite loss. */
  afterStep(step: number, loss: number): void {
    if (!Number.isFinite(loss)) {
      const err = new MonitorError('non-finite-loss', [], step, `the loss became ${loss} at step ${step}: training diverged`);
      this.record({ rule: 'non-finite-loss', severity: 'fatal', ranks: [], step, detail: err.message });
      this.events?.markRecorded(err);
      throw err;
    }
    const o = this.options;
    this.smoothLoss = Number.isNaN(this.smoothLoss) ? loss : 0.9 * this.smoothLoss + 0.1 * loss;
    if (step >= o.divergenceWarmup && Number.isNaN(this.startLoss)) this.startLoss = this.smoothLoss;
    const lowest = Math.max(this.bestLoss, o.divergenceFloor * (Number.isNaN(this.startLoss) ? 0 : this.startLoss));
    const high = step >= o.divergenceWarmup && this.smoothLoss > o.divergenceFactor * lowest;
    this.highLosses = high ? this.highLosses + 1 : 0;
    if (!high) this.diverging = false;
    if (this.highLosses >= o.divergencePatience && !this.diverging) {
      this.diverging = true;
      this.record({
        rule: 'loss-divergence', severity: 'warning', ranks: [], step,
        detail: `the loss is diverging: ${loss.toPrecision(4)} at step ${step} (smoothed ${this.smoothLoss.toPrecision(4)}, ` +
          `> ${o.divergenceFactor}× its best ${lowest.toPrecision(4)}, ${o.divergencePatience} steps running)`,
      });
    }
    this.bestLoss = Math.min(this.bestLoss, this.smoothLoss);
  }

  private record(d: Detection): void {
    if (!this.shared || this.rank === 0) this.events?.detection(d);
  }
}

/** How many values are NaN or ±Inf (only counted once the sum of squares says some are). */
function countNonFinite(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) n++;
  return n;
}
