/** A GRPO run's series on the dashboard (src/dashboard/grpo_series.ts): a point per step and per held-out evaluation, and what a delta carries. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { addGrpo, emptyGrpoSeries, grpoSince } from '../../src/dashboard/grpo_series.js';

const step = (s: number, kl: number | null): Record<string, unknown> => ({
  kind: 'grpo', step: s, reward: s / 10, reward_std: 0.1, kl, clip_ratio: { region_mean: 0.05 }, completions: { mean_length: 12 }, rollout_tokens_per_sec: 100, train_tokens_per_sec: 300, staleness: Math.min(s, 1),
});

it('each step is a point at the steps done; held-out evaluations are points of their own; a delta carries what is new', () => {
  const g = emptyGrpoSeries();
  addGrpo(g, { kind: 'grpo_eval', step: 0, reward: 0.2 });
  addGrpo(g, step(0, null));
  addGrpo(g, step(1, 0.01));
  addGrpo(g, { kind: 'grpo_eval', step: 2, reward: 0.4 });
  assert.deepEqual([g.x, g.reward, g.kl, g.clipRatio, g.completionLength], [[1, 2], [0, 0.1], [null, 0.01], [0.05, 0.05], [12, 12]]);
  assert.deepEqual(g.staleness, [0, 1]);
  assert.deepEqual([g.evalX, g.evalReward], [[0, 2], [0.2, 0.4]]);
  const since = grpoSince(g, 1, 1);
  assert.deepEqual([since.x, since.reward, since.staleness, since.evalX, since.evalReward], [[2], [0.1], [1], [2], [0.4]]);
});

it('a step line without staleness (written before rollout workers) counts as 0: the trainer sampled it', () => {
  const g = emptyGrpoSeries();
  const { staleness: _s, ...old } = step(0, null);
  addGrpo(g, old);
  assert.deepEqual(g.staleness, [0]);
});
