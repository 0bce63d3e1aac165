/**
 * Where a time-to-accuracy run's training time went, step by step, from the same records
 * time_to_accuracy.ts reads (the first step's start, every step's end, every evaluation's end), so
 * both sides of bench:ddp are broken down the same way: a mean step well above the median says the
 * time is in a few slow steps (start-up, steps after an evaluation, a descheduled rank), not in
 * every step's work.
 */
import type { EvalPoint } from './time_to_accuracy.js';
import { mean, median } from './stats.js';

export interface StepProfile {
  /** Steps counted: those before the evaluation that reached the target (or all). */
  steps: number;
  /** The first step, start-up included (lazily built kernels, first-touch memory). */
  firstMs: number;
  /** Median and mean of the later steps: the gap between consecutive step ends, an evaluation's pause excluded. */
  medianMs: number;
  meanMs: number;
  /** Seconds the later steps took beyond twice the median, summed: the slow tail's share of the time. */
  tailSeconds: number;
}

/** `stepEnds`: step index → end time (ms since the epoch); steps `0 .. untilStep - 1` are counted. */
export function stepProfile(startMs: number, stepEnds: ReadonlyMap<number, number>, evals: readonly EvalPoint[], untilStep: number): StepProfile {
  const evalEnd = new Map(evals.map((e) => [e.step, e.time]));
  const later: number[] = [];
  for (let s = 1; s < untilStep && stepEnds.has(s); s++) {
    // An evaluation after `s` steps ran between the end of step s - 1 and the start of step s.
    later.push(stepEnds.get(s)! - (evalEnd.get(s) ?? stepEnds.get(s - 1)!));
  }
  const med = median(later);
  const tail = later.reduce((t, ms) => t + Math.max(0, ms - 2 * med), 0);
  return { steps: later.length + 1, firstMs: (stepEnds.get(0) ?? NaN) - startMs, medianMs: med, meanMs: mean(later), tailSeconds: tail / 1000 };
}
