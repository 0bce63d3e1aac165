/**
 * rl/importance.ts: TRL 1.13's four vLLM importance-sampling modes (grpo_trainer.py,
 * `_generate_and_score_completions`), on two completions of three positions whose ratios are worked
 * out by hand: row 0's log-ratios 0.5, −1, 0 (sum −0.5), row 1's 2, 0 and a padding position.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importanceWeights } from '../../src/rl/importance.js';

const old = [-1, -2, -3, -1, -1, 0];
const sampling = [-1.5, -1, -3, -3, -1, 5];
const mask = [1, 1, 1, 1, 1, 0];
const [e05, em1, em05, e2] = [Math.exp(0.5), Math.exp(-1), Math.exp(-0.5), Math.exp(2)];

function assertNear(actual: ArrayLike<number>, expected: readonly number[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) <= 1e-6 * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} against ${expected[i]}`);
}
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('importance sampling weights (TRL vllm_importance_sampling_mode)', () => {
  it('token_truncate: each token exp(old − sampling) clamped to [min, max]; padding 1; statistics over the masked tokens', () => {
    const r = importanceWeights(old, sampling, mask, 3, { mode: 'token_truncate', max: 3 });
    assertNear(r.weights, [e05, em1, 1, 3, 1, 1], 'weights');
    assertNear([r.min, r.mean, r.max], [em1, mean([e05, em1, 1, 3, 1]), 3], 'statistics');
    const floored = importanceWeights(old, sampling, mask, 3, { mode: 'token_truncate', max: 3, min: 0.5 });
    assertNear(floored.weights, [e05, 0.5, 1, 3, 1, 1], 'with a lower bound');
  });

  it('token_mask: a token whose ratio lies outside [min, max] gets 0', () => {
    const r = importanceWeights(old, sampling, mask, 3, { mode: 'token_mask', max: 3, min: 0.5 });
    assertNear(r.weights, [e05, 0, 1, 0, 1, 1], 'weights');
    assertNear([r.min, r.mean, r.max], [0, mean([e05, 0, 1, 0, 1]), e05], 'statistics');
  });

  it('sequence_truncate: one ratio a completion, exp of its summed log-ratios, clamped, on every position of its row; statistics over the completions', () => {
    const r = importanceWeights(old, sampling, mask, 3, { mode: 'sequence_truncate', max: 3, min: 0.7 });
    assertNear(r.weights, [0.7, 0.7, 0.7, 3, 3, 3], 'weights');
    assertNear([r.min, r.mean, r.max], [0.7, 1.85, 3], 'statistics');
    const unbounded = importanceWeights(old, sampling, mask, 3, { mode: 'sequence_truncate', max: 10 });
    assertNear(unbounded.weights, [em05, em05, em05, e2, e2, e2], 'within the bounds');
  });

  it('sequence_mask (TRL\'s default): a completion whose ratio lies outside [min, max] weighs 0 throughout', () => {
    const r = importanceWeights(old, sampling, mask, 3, { mode: 'sequence_mask', max: 3 });
    assertNear(r.weights, [em05, em05, em05, 0, 0, 0], 'weights');
    assertNear([r.min, r.mean, r.max], [0, em05 / 2, em05], 'statistics');
  });

  it('a NaN sampling log-probability counts as no difference (TRL\'s nan_to_num): ratio 1', () => {
    for (const mode of ['token_truncate', 'sequence_mask'] as const) {
      const r = importanceWeights([-1, -2], [NaN, -2], [1, 1], 2, { mode, max: 3 });
      assertNear(r.weights, [1, 1], mode);
    }
  });

  it('refuses an unknown mode, bounds out of order, and values that are not rows of the width', () => {
    assert.throws(() => importanceWeights(old, sampling, mask, 3, { mode: 'token' as never, max: 3 }), /mode must be one of token_truncate, token_mask, sequence_truncate, sequence_mask, got "token"/);
    assert.throws(() => importanceWeights(old, sampling, mask, 3, { mode: 'token_mask', max: 0 }), /upper bound must be > 0, got 0/);
    assert.throws(() => importanceWeights(old, sampling, mask, 3, { mode: 'token_mask', max: 2, min: 3 }), /lower bound must be in \[0, 2\]/);
    assert.throws(() => importanceWeights(old, sampling, mask, 4, { mode: 'token_mask', max: 3 }), /6 values are not rows of width 4/);
    assert.throws(() => importanceWeights(old, sampling.slice(1), mask, 3, { mode: 'token_mask', max: 3 }), /6 old, 5 sampling log-probabilities and 6 mask values/);
  });
});
