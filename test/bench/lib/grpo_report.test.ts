/**
 * bench:grpo's reading of each side's report: our metrics lines and grpo_trl.py's JSON become the
 * same per-step breakdown, warm-up steps left out, each side's untimed part the step's remainder;
 * TRL's prompts are checked against ours step by step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type OurGrpoLine, type TrlReport, ourStepTimes, spread, stepSummary, trlPromptsDiffer, trlStepTimes } from '../../../bench/lib/grpo_report.js';

const line = (step: number, seconds: number, kind = 'grpo'): OurGrpoLine => ({
  kind, step, step_seconds: seconds, cpu_seconds: seconds * 0.9, rollout_seconds: seconds / 2, rollout_tokens_per_sec: 100, train_seconds: seconds / 4,
  completions: { mean_length: 64 },
});

const trl: TrlReport = {
  engine: 'trl', detail: 'trl', peakRssMB: 1, firstPromptIds: [1, 2],
  steps: [{ seconds: 9, cpuSeconds: 8 }, { seconds: 4, cpuSeconds: 3.5 }, { seconds: 6, cpuSeconds: 5 }],
  generations: [1, 2, 3].map((s) => ({ seconds: s, tokens: 128, sequences: 4, promptTokens: [5, 5, 6, 6] })),
  rewardSeconds: [0.1, 0.2, 0.3],
  logs: [{ 'completions/mean_length': 30 }, { 'completions/mean_length': 31 }, { 'completions/mean_length': 32 }],
};

describe('bench/lib/grpo_report', () => {
  it('ours: each line\'s own step and CPU seconds after the warm-up, the untimed rest the remainder; other kinds ignored', () => {
    const steps = ourStepTimes([line(2, 8), line(0, 20), { ...line(1, 0), kind: 'grpo_eval' }, line(1, 4)], 1);
    assert.deepEqual(steps.map((s) => [s.step, s.seconds, s.cpuSeconds, s.rolloutSeconds, s.trainSeconds, s.restSeconds, s.remainder]), [
      [1, 4, 3.6, 2, 1, 1, 'rest'],
      [2, 8, 7.2, 4, 2, 2, 'rest'],
    ]);
    assert.equal(steps[0].rolloutTokens, 200);
  });

  it('TRL: its steps after the warm-up, training the remainder, the mean length from its logs', () => {
    const steps = trlStepTimes(trl, 1);
    assert.deepEqual(steps.map((s) => [s.step, s.seconds, s.cpuSeconds, s.rolloutSeconds, s.restSeconds, s.remainder, s.rolloutTokensPerSec, s.meanLength]), [
      [1, 4, 3.5, 2, 0.2, 'train', 64, 31],
      [2, 6, 5, 3, 0.3, 'train', 128 / 3, 32],
    ]);
    assert.ok(Math.abs(steps[0].trainSeconds - 1.8) < 1e-12);
    assert.throws(() => trlStepTimes({ ...trl, rewardSeconds: [0.1] }, 1), /timed 3 steps, 3 generations and 1 reward passes/);
  });

  it('spread and the summary: medians over the timed steps', () => {
    assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
    assert.throws(() => spread([]), /no values/);
    const summary = stepSummary(trlStepTimes(trl, 1));
    assert.deepEqual([summary.seconds.median, summary.cpuSeconds, summary.rollout, summary.meanLength], [5, 4.25, 2.5, 31.5]);
  });

  it('TRL\'s prompts against ours: each prompt G times, step by step; the first difference named', () => {
    assert.equal(trlPromptsDiffer(trl, [[5, 6], [5, 6], [5, 6]], 2), null);
    assert.equal(trlPromptsDiffer(trl, [[5, 6], [6, 5], [5, 6]], 2), 'step 2: TRL\'s prompts are 5,5,6,6 tokens long, ours 6,6,5,5');
  });
});
