/**
 * What the dashboard draws of a GRPO run (`smolcluster grpo`, rl/grpo_run.ts): its steps' lines of
 * metrics.jsonl (kind "grpo") and its held-out evaluations (kind "grpo_eval"), a point each — a
 * GRPO step takes seconds, so nothing is bucketed.
 */

/** A GRPO run's steps (metrics.jsonl kind "grpo": x is the steps done) and held-out evaluations (kind "grpo_eval"), a point each. */
export interface GrpoSeries {
  x: number[];
  reward: number[];
  rewardStd: number[];
  /** Null where β is 0 (no reference). */
  kl: Array<number | null>;
  clipRatio: number[];
  completionLength: number[];
  rolloutTokensPerSec: number[];
  trainTokensPerSec: number[];
  /** Policy versions between the step's oldest rollout and the policy it trains (0: synchronous or in-process). */
  staleness: number[];
  evalX: number[];
  evalReward: number[];
}

export function emptyGrpoSeries(): GrpoSeries {
  return { x: [], reward: [], rewardStd: [], kl: [], clipRatio: [], completionLength: [], rolloutTokensPerSec: [], trainTokensPerSec: [], staleness: [], evalX: [], evalReward: [] };
}

/** A GRPO metrics line added to the series (lines come from one process, in step order). */
export function addGrpo(g: GrpoSeries, r: Record<string, unknown>): void {
  const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);
  const field = (o: unknown, k: string): unknown => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined);
  if (r.kind === 'grpo_eval') {
    g.evalX.push(num(r.step));
    g.evalReward.push(num(r.reward));
    return;
  }
  g.x.push(num(r.step) + 1);
  g.reward.push(num(r.reward));
  g.rewardStd.push(num(r.reward_std));
  g.kl.push(typeof r.kl === 'number' ? r.kl : null);
  g.clipRatio.push(num(field(r.clip_ratio, 'region_mean')));
  g.completionLength.push(num(field(r.completions, 'mean_length')));
  g.rolloutTokensPerSec.push(num(r.rollout_tokens_per_sec));
  g.trainTokensPerSec.push(num(r.train_tokens_per_sec));
  // A line written before rollout workers existed has no staleness: its rollouts were the trainer's own (0).
  g.staleness.push(r.staleness === undefined ? 0 : num(r.staleness));
}

/** The GRPO points after the first `steps` steps and `evals` evaluations. */
export function grpoSince(g: GrpoSeries, steps: number, evals: number): GrpoSeries {
  const { evalX, evalReward, ...perStep } = g;
  const sliced = Object.fromEntries(Object.entries(perStep).map(([k, v]) => [k, v.slice(steps)])) as Omit<GrpoSeries, 'evalX' | 'evalReward'>;
  return { ...sliced, evalX: evalX.slice(evals), evalReward: evalReward.slice(evals) };
}
