/**
 * bench:grpo's figures from what each side wrote: our run's metrics.jsonl lines (kind "grpo") and
 * bench/reference/grpo_trl.py's JSON report, both turned into the same per-step breakdown of wall
 * time, after the warm-up steps.
 */
import { median } from '../../src/util/stats.js';

/** The fields of a metrics.jsonl "grpo" line that the bench reads (src/rl/grpo_step.ts GrpoStepRecord, plus `time`). */
export interface OurGrpoLine {
  kind: string;
  step: number;
  step_seconds: number;
  cpu_seconds: number;
  rollout_seconds: number;
  rollout_tokens_per_sec: number;
  train_seconds: number;
  completions: { mean_length: number };
}

/** bench/reference/grpo_trl.py's last line. */
export interface TrlReport {
  engine: 'trl';
  detail: string;
  /** Each optimizer step's wall and process CPU seconds (on_step_begin → on_step_end). */
  steps: { seconds: number; cpuSeconds: number }[];
  /** Each step's _generate_single_turn: seconds, completion tokens, sequences, each prompt's length. */
  generations: { seconds: number; tokens: number; sequences: number; promptTokens: number[] }[];
  /** Each step's _calculate_rewards seconds. */
  rewardSeconds: number[];
  /** TRL's logged line of each step (loss, completions/mean_length, step_time, ...). */
  logs: Record<string, number>[];
  firstPromptIds: number[];
  peakRssMB: number;
}

/**
 * One timed step, split the way both sides can measure it: sampling (rollouts), training (loss
 * forwards, backward, clipping, the optimizer) and the rest of the step (rewards, padding, advantages,
 * bookkeeping). Ours times sampling and training and leaves the rest; TRL's times sampling and the
 * rewards and leaves training (with TRL's bookkeeping): `remainder` says which part is the step's
 * wall time less the two timed ones.
 */
export interface StepTimes {
  step: number;
  seconds: number;
  /** The process's CPU seconds over the step (every thread's): what other work on the machine inflates less than the wall clock. */
  cpuSeconds: number;
  rolloutSeconds: number;
  trainSeconds: number;
  restSeconds: number;
  remainder: 'train' | 'rest';
  rolloutTokens: number;
  rolloutTokensPerSec: number;
  meanLength: number;
}

/** Our timed steps: each line's own step_seconds and cpu_seconds, the steps before `warmup` left out. */
export function ourStepTimes(lines: readonly OurGrpoLine[], warmup: number): StepTimes[] {
  return lines.filter((l) => l.kind === 'grpo' && l.step >= warmup).sort((a, b) => a.step - b.step).map((l) => ({
    step: l.step, seconds: l.step_seconds, cpuSeconds: l.cpu_seconds, rolloutSeconds: l.rollout_seconds, trainSeconds: l.train_seconds,
    restSeconds: l.step_seconds - l.rollout_seconds - l.train_seconds, remainder: 'rest',
    rolloutTokens: Math.round(l.rollout_tokens_per_sec * l.rollout_seconds), rolloutTokensPerSec: l.rollout_tokens_per_sec, meanLength: l.completions.mean_length,
  }));
}

/** TRL's timed steps: its callback's wall time per optimizer step, after `warmup` steps. */
export function trlStepTimes(r: TrlReport, warmup: number): StepTimes[] {
  if (r.generations.length !== r.steps.length || r.rewardSeconds.length !== r.steps.length) {
    throw new Error(`grpo_trl.py timed ${r.steps.length} steps, ${r.generations.length} generations and ${r.rewardSeconds.length} reward passes: one of each a step was expected`);
  }
  return r.steps.slice(warmup).map((s, j) => {
    const i = j + warmup;
    const g = r.generations[i];
    return {
      step: i, seconds: s.seconds, cpuSeconds: s.cpuSeconds, rolloutSeconds: g.seconds, restSeconds: r.rewardSeconds[i], trainSeconds: s.seconds - g.seconds - r.rewardSeconds[i],
      remainder: 'train', rolloutTokens: g.tokens, rolloutTokensPerSec: g.tokens / g.seconds, meanLength: r.logs[i]?.['completions/mean_length'] ?? g.tokens / g.sequences,
    };
  });
}

export interface Spread { median: number; min: number; max: number; n: number }

export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new Error('spread: no values');
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** Each part's median over the timed steps. */
export function stepSummary(steps: readonly StepTimes[]): { seconds: Spread; cpuSeconds: number; rollout: number; train: number; rest: number; rolloutTokensPerSec: number; meanLength: number } {
  return {
    seconds: spread(steps.map((s) => s.seconds)), cpuSeconds: median(steps.map((s) => s.cpuSeconds)), rollout: median(steps.map((s) => s.rolloutSeconds)), train: median(steps.map((s) => s.trainSeconds)),
    rest: median(steps.map((s) => s.restSeconds)), rolloutTokensPerSec: median(steps.map((s) => s.rolloutTokensPerSec)), meanLength: median(steps.map((s) => s.meanLength)),
  };
}

/**
 * Whether TRL sampled the prompts ours did, step by step, as far as its report shows them: each
 * step's prompt lengths (each prompt G times, TRL's RepeatSampler) against ours. Null when equal,
 * else the first difference in words.
 */
export function trlPromptsDiffer(r: Pick<TrlReport, 'generations'>, ourLengths: readonly (readonly number[])[], generations: number): string | null {
  for (let i = 0; i < r.generations.length; i++) {
    const want = (ourLengths[i] ?? []).flatMap((n) => Array<number>(generations).fill(n));
    const got = r.generations[i].promptTokens;
    if (got.length !== want.length || got.some((n, j) => n !== want[j])) return `step ${i + 1}: TRL's prompts are ${got.join(',')} tokens long, ours ${want.join(',')}`;
  }
  return null;
}
