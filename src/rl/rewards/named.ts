/**
 * Rewards as the command line names them (`grpo --reward`): `exact-number`, `format:REGEX`, or the
 * path of a JavaScript module (`./my_reward.mjs`, anything ending in .js, .mjs or .cjs), each with
 * its weight (--reward-weights, TRL's reward_weights; default 1 each).
 */
import { exactNumberReward, formatReward } from './builtin.js';
import type { WeightedReward } from './combine.js';
import type { Reward } from './reward.js';
import { userModuleReward } from './user_module.js';

export interface NamedRewardOptions {
  /** The row field exact-number reads (default answer). */
  answerField?: string;
  /** A reward's deadline per completion, ms. */
  timeoutMs?: number;
}

/** The rewards `specs` name, weighted; a name that is none of the kinds is refused naming it. */
export async function namedRewards(specs: readonly string[], weights: readonly number[] | undefined, o: NamedRewardOptions = {}): Promise<WeightedReward[]> {
  if (specs.length === 0) throw new Error('--reward: give at least one (exact-number, format:REGEX, or ./module.mjs)');
  if (weights !== undefined && weights.length !== specs.length) throw new Error(`--reward-weights: ${weights.length} weights for ${specs.length} rewards (one per --reward, in order)`);
  const rewards: Reward[] = [];
  try {
    for (const spec of specs) rewards.push(await namedReward(spec, o));
  } catch (e) {
    await Promise.all(rewards.map((r) => r.close?.()));
    throw e;
  }
  return rewards.map((reward, i) => ({ reward, weight: weights?.[i] ?? 1 }));
}

async function namedReward(spec: string, o: NamedRewardOptions): Promise<Reward> {
  if (spec === 'exact-number') return exactNumberReward(o.answerField ?? 'answer');
  if (spec.startsWith('format:')) return formatReward(spec.slice('format:'.length), { timeoutMs: o.timeoutMs });
  if (/\.[cm]?js$/.test(spec)) return userModuleReward(spec, { timeoutMs: o.timeoutMs });
  throw new Error(`--reward ${spec}: not a reward (exact-number, format:REGEX, or a JavaScript module's path ending in .js, .mjs or .cjs)`);
}
