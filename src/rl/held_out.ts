/**
 * A GRPO run's held-out check: one greedy completion of each held-out prompt, scored by the run's
 * own rewards. With exact-number alone its mean reward is the held-out accuracy (the share of
 * problems whose final number is the answer).
 */
import { nanMean } from './advantages.js';
import type { GrpoModels, GrpoSettings } from './grpo_step.js';
import type { PromptRow } from './prompts.js';
import { scoreRewards } from './rewards/combine.js';
import { sampleCompletions } from './rollouts.js';

export interface HeldOutRecord {
  /** The mean combined reward over the held-out prompts. */
  reward: number;
  /** Each reward's mean (exact-number's is the accuracy). */
  rewards: Record<string, number>;
  prompts: number;
  mean_length: number;
}

export async function scoreHeldOut(m: GrpoModels, prompts: readonly PromptRow[], s: GrpoSettings): Promise<HeldOutRecord> {
  const sampled = await sampleCompletions(m.policy, prompts.map((p) => p.ids), {
    generations: 1, maxCompletionLength: s.maxCompletionLength, temperature: 0, eosIds: m.eosIds, seed: 0, precision: s.precision, maxRows: s.maxRows,
  });
  const ends = new Set(m.eosIds);
  const texts = sampled.completions.map((c) => m.decode(c.ids.filter((id) => !ends.has(id))));
  const scores = await scoreRewards(m.rewards, texts.map((completion, i) => ({ prompt: prompts[i].text, completion, row: prompts[i].row })), { timeoutMs: s.rewardTimeoutMs, warn: m.warn });
  return {
    reward: nanMean([...scores.total]),
    rewards: Object.fromEntries(Object.entries(scores.perReward).map(([name, values]) => [name, nanMean([...values])])),
    prompts: prompts.length,
    mean_length: sampled.completions.reduce((n, c) => n + c.ids.length, 0) / Math.max(1, sampled.completions.length),
  };
}
