/**
 * What a load-balancing run did, read from its experiment folder: cluster throughput, each rank's
 * wait fraction, the shares it settled on and the time to a target accuracy. Times are the steps'
 * own (compute + communication + wait, measured in the loop), so evaluations are not counted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type StepLine, readEvents, readMetrics } from '../../src/metrics/reader.js';
import { mean, stdev } from '../../src/util/stats.js';

export interface BalanceRun {
  steps: number;
  /** All ranks' samples / rank 0's step time, over steps [from, end). */
  samplesPerSec: number;
  /** result.json's samples/s: the whole run, every step from the first, as `train` reports it to the user. */
  runSamplesPerSec: number;
  /** Per rank: wait / (compute + comm + wait), over steps [from, end). */
  waitFraction: number[];
  /** Per rank: mean compute ms per sample over steps [from, end). */
  msPerSample: number[];
  /** The slowed rank's share of the global batch at the last step. */
  finalShare: number[];
  rebalances: { step: number; shares: number[] }[];
  /** Training seconds (rank 0's step times) until the first evaluation at or above the target; null if never. */
  timeToTarget: number | null;
  finalAccuracy: number | null;
  /** Per rank: mean wait (ms) in the steps right after an evaluation, over steps [from, end) — what evaluating costs the others. */
  afterEvalWaitMs: number[];
  /**
   * How late the last rank reached each step's barrier after rank 0, per step (rank 0's wait minus
   * its wait, ms: positive when rank 0 waited for it): mean and standard deviation over steps [from, end).
   * A mean near 0 with a large spread is jitter, which no split removes; a large mean is a split that is off.
   */
  lateMs: { mean: number; std: number };
  /** Per rank: its mean busy time per step (compute + communication, ms), over steps [from, end). */
  busyMs: number[];
}

/**
 * `evalEvery`: rank 0 evaluates after each such step (the others go on), so the step after an
 * evaluation starts with the others waiting for it — a cost of evaluating, not of the split. Those
 * steps are left out of every figure but `afterEvalWaitMs`.
 */
export function readBalanceRun(dir: string, o: { from: number; target: number; evalEvery?: number }): BalanceRun {
  const metrics = readMetrics(join(dir, 'metrics.jsonl'));
  const steps = metrics.steps;
  const ranks = [...new Set(steps.map((s) => s.rank))].sort((a, b) => a - b);
  const byRank = ranks.map((r) => steps.filter((s) => s.rank === r).sort((a, b) => a.step - b.step));
  const afterEval = (s: StepLine): boolean => o.evalEvery !== undefined && o.evalEvery > 0 && s.step > 0 && s.step % o.evalEvery === 0;
  const window = byRank.map((rs) => rs.filter((s) => s.step >= o.from && !afterEval(s)));
  const dur = (s: StepLine): number => s.compute_ms + s.comm_ms + s.wait_ms;
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const samples = sum(window.flatMap((rs) => rs.map((s) => s.samples)));
  const seconds = sum(window[0].map(dur)) / 1000;
  const last = byRank.map((rs) => rs[rs.length - 1]);
  const total = sum(last.map((s) => s.samples));
  const events = existsSync(join(dir, 'events.jsonl')) ? readEvents(join(dir, 'events.jsonl')) : [];
  const evals = metrics.evals.filter((e) => e.rank === 0 && e.test_accuracy !== null).sort((a, b) => a.step - b.step);
  const hit = evals.find((e) => e.test_accuracy! >= o.target);
  return {
    steps: byRank[0].length,
    samplesPerSec: samples / seconds,
    runSamplesPerSec: (JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { samples_per_sec: number }).samples_per_sec,
    waitFraction: window.map((rs) => sum(rs.map((s) => s.wait_ms)) / sum(rs.map(dur))),
    msPerSample: window.map((rs) => sum(rs.map((s) => s.compute_ms)) / Math.max(1, sum(rs.map((s) => s.samples)))),
    finalShare: last.map((s) => s.samples / total),
    rebalances: events.filter((e) => e.kind === 'rebalance').map((e) => ({ step: e.step as number, shares: e.shares as number[] })),
    timeToTarget: hit ? sum(byRank[0].filter((s) => s.step < hit.step && !afterEval(s)).map(dur)) / 1000 : null,
    finalAccuracy: evals.length > 0 ? evals[evals.length - 1].test_accuracy : null,
    lateMs: lateness(window[0], window[window.length - 1]),
    busyMs: window.map((rs) => sum(rs.map((s) => s.compute_ms + s.comm_ms)) / Math.max(1, rs.length)),
    afterEvalWaitMs: byRank.map((rs) => {
      const after = rs.filter((s) => s.step >= o.from && afterEval(s));
      return after.length > 0 ? sum(after.map((s) => s.wait_ms)) / after.length : NaN;
    }),
  };
}

/** Per step both ranks took: rank 0's wait − the other's (how late the other reached the barrier). */
function lateness(first: StepLine[], last: StepLine[]): { mean: number; std: number } {
  const other = new Map(last.map((s) => [s.step, s]));
  const d = first.filter((s) => other.has(s.step)).map((s) => s.wait_ms - other.get(s.step)!.wait_ms);
  if (d.length < 2) return { mean: NaN, std: NaN };
  return { mean: mean(d), std: stdev(d) };
}
