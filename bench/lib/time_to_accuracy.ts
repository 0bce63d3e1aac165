/**
 * Time to a test accuracy, from a run's own records: the training time until the first evaluation at
 * or above the target, evaluation pauses excluded. Used alike for our runs (metrics.jsonl) and the
 * PyTorch references (their JSON), so both sides are measured the same way.
 *
 * An evaluation after `step` steps ran between the end of step `step - 1` and its record's time;
 * that pause is subtracted. The hit is the end of the last step before the first evaluation ≥ target.
 */
export interface EvalPoint {
  /** Steps taken before this evaluation. */
  step: number;
  accuracy: number;
  /** Wall clock (ms since the epoch) when the evaluation finished. */
  time: number;
}

export interface TimeToAccuracy {
  /** Training seconds to the target (evaluations excluded); null if never reached. */
  seconds: number | null;
  /** Steps taken before the evaluation that reached it. */
  steps: number | null;
  /** Seconds spent evaluating before the hit (or in all evaluations if never reached). */
  evalSeconds: number;
  /** When the evaluation that reached it finished (ms since the epoch). */
  reachedAt: number | null;
  /** Best accuracy of all evaluations (also those after the hit). */
  best: number;
}

/**
 * `startMs`: when the first step began; `stepEnds`: step index → end time (ms since the epoch).
 */
export function timeToAccuracy(startMs: number, stepEnds: ReadonlyMap<number, number>, evals: readonly EvalPoint[], target: number): TimeToAccuracy {
  const sorted = [...evals].sort((a, b) => a.step - b.step);
  const best = sorted.length ? Math.max(...sorted.map((e) => e.accuracy)) : NaN;
  let paused = 0;
  for (const e of sorted) {
    const before = stepEnds.get(e.step - 1) ?? e.time;
    if (e.accuracy >= target) {
      return { seconds: (before - startMs - paused) / 1000, steps: e.step, evalSeconds: paused / 1000, reachedAt: e.time, best };
    }
    paused += Math.max(0, e.time - before);
  }
  return { seconds: null, steps: null, evalSeconds: paused / 1000, reachedAt: null, best };
}
