import { arrivalShares, predictedStepMs, speedShares } from './shares.js';

/**
 * A load-balancing policy turns measured compute times into shares of the global batch. It only
 * computes: the balancer (balancer.ts) gathers the times, asks the policy on one rank and
 * broadcasts what it decided. Decision steps depend on the step number alone, so every rank
 * knows when to take part.
 */

/**
 * What every computing shard measured: ms of forward + backward per sample, and ms per step of
 * the busy time that does not scale with its share (speed.ts). Without the fixed times (tests,
 * or nothing measured) the shares are plain speed shares.
 */
export interface Measured {
  /** Mean over the steps since the last decision (the first step of the run excluded: warm-up). */
  windowMean: number[];
  /** The trend over the run's windows, this one included (speed.ts). */
  trend: number[];
  /** Fixed ms per step: the mean since the last decision and the trend. */
  fixedWindowMean?: number[];
  fixedTrend?: number[];
  /** Samples per step over all shards (the global batch). */
  globalBatch?: number;
  /** Standard deviation of each shard's busy time per step since the last decision (ms). */
  jitterMs?: number[];
  /** The CPU capacity each shard's times are at (capacity.ts: the times are its CPU work at that share of a CPU). */
  capacity?: number[];
}

/**
 * What shares are for. `arrival`: every shard reaches the barrier together on average, its
 * per-step work counted beside its time per sample (shares.ts arrivalShares). `shortest` (the
 * default): arrival, and a jittery shard planned to arrive early, for the shortest expected step
 * (it matters where the jitter is a large part of a short step). `speed`: shares proportional to
 * speed per sample alone (a shard 3× slower gets a quarter), the guide's rule.
 */
export { BALANCE_MODELS, type BalanceModel } from '../config/options/choices.js';
import type { BalanceModel } from '../config/options/choices.js';

/**
 * The model the meter's three measurements call for: speed per sample, per-step work and jitter
 * all count. Where no rank is jittery it gives `arrival`'s shares; where one is (short steps, a
 * throttled node), it plans that rank early. With equal speeds its jitter margins vanish
 * (probit(½) = 0), so equal nodes keep equal shares.
 */
export const DEFAULT_BALANCE_MODEL: BalanceModel = 'shortest';

/** The shares the model asks for, by the window's or the trend's times. */
export function sharesFrom(m: Measured, which: 'window' | 'trend', floor: number, model: BalanceModel): number[] {
  const { perSample, fixed } = timesOf(m, which);
  if (model === 'speed') return speedShares(perSample, floor);
  return arrivalShares(perSample, fixed, m.globalBatch ?? 1, floor, model === 'shortest' ? m.jitterMs : undefined);
}

/** The window's or the trend's ms per sample and fixed ms per step (none measured: 0). */
function timesOf(m: Measured, which: 'window' | 'trend'): { perSample: number[]; fixed: number[] } {
  const perSample = which === 'window' ? m.windowMean : m.trend;
  return { perSample, fixed: (which === 'window' ? m.fixedWindowMean : m.fixedTrend) ?? perSample.map(() => 0) };
}

/**
 * Whether moving from `current` to `proposed` promises a step at least `minGain` shorter, by the
 * same measurements' prediction (predictedStepMs). Equal nodes measure a few percent apart from
 * noise, and a shard given fewer samples looks slower per sample (its per-step overhead spread over
 * fewer): followed, those moved equal nodes to 45/55 and cost them 3–7 % (docs/BALANCE.md). A
 * really slower node promises tens of percent.
 */
export function promisesGain(m: Measured, which: 'window' | 'trend', current: readonly number[], proposed: readonly number[], minGain: number): boolean {
  const { perSample, fixed } = timesOf(m, which);
  const batch = m.globalBatch ?? 1;
  return predictedStepMs(perSample, fixed, batch, current) >= (1 + minGain) * predictedStepMs(perSample, fixed, batch, proposed);
}

/** The times a decision saw, for its reason. */
export function describeMeasured(m: Measured, which: 'window' | 'trend'): string {
  const fixed = which === 'window' ? m.fixedWindowMean : m.fixedTrend;
  const times = describeTimes('times', which === 'window' ? m.windowMean : m.trend);
  const ms = (xs: readonly number[]): string => xs.map((t) => (Number.isFinite(t) ? t.toPrecision(3) : '?')).join(', ');
  const jitter = m.jitterMs ? `, jitter ${ms(m.jitterMs)} ms` : '';
  const capacity = m.capacity?.some((c) => c < 1) ? `, capacity ${m.capacity.map((c) => (Number.isFinite(c) ? c.toFixed(2) : '?')).join(', ')} CPU` : '';
  return fixed ? `${times} + ${ms(fixed)} ms per step${jitter}${capacity}` : times;
}

export interface Decision {
  shares: number[];
  reason: string;
}

export interface BalancePolicy {
  readonly name: PolicyName;
  /** True when shares are decided before `step`. */
  decidesAt(step: number): boolean;
  /** New shares, or null to keep the current ones. */
  decide(step: number, current: readonly number[], measured: Measured): Decision | null;
}

export const POLICIES = ['proportional', 'dynamic', 'hybrid'] as const;
export type PolicyName = (typeof POLICIES)[number];

export interface PolicyOptions {
  /** dynamic, hybrid: decide every K steps. */
  rebalanceInterval: number;
  /** proportional, hybrid: timed steps before the first decision (default 5; the first is warm-up). */
  calibrationSteps?: number;
  /** hybrid: the largest change of any share per rebalance after calibration (default 0.1). */
  maxChange?: number;
  /** No share goes below this fraction of an equal share (default 0.1). */
  floorFraction?: number;
  /** Changes smaller than this (in every share) are not made (default 0.01). */
  deadband?: number;
  /** A change must promise a step this much shorter (predicted from the measurements; default 0.05). */
  minGain?: number;
  /** What the shares equalise (default DEFAULT_BALANCE_MODEL). */
  model?: BalanceModel;
}

/** ms per sample as readable text, e.g. "rank times 0.42, 1.31 ms/sample". */
export function describeTimes(label: string, times: readonly number[]): string {
  return `${label} ${times.map((t) => (Number.isFinite(t) ? t.toPrecision(3) : '?')).join(', ')} ms/sample`;
}

export function withDefaults(o: PolicyOptions): Required<PolicyOptions> {
  const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as PolicyOptions;
  return { calibrationSteps: 5, maxChange: 0.1, floorFraction: 0.1, deadband: 0.01, minGain: 0.05, model: DEFAULT_BALANCE_MODEL, ...given };
}
