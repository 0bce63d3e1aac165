/**
 * GRPO advantages from the rewards of B prompts × G completions, as TRL 1.13 computes them
 * (`GRPOTrainer._generate_and_score_completions`, multi_objective_aggregation "sum_then_normalize"):
 *
 *   advantage = reward − mean(group)                      scale_rewards "none" (Dr. GRPO)
 *   advantage = (reward − mean(group)) / (std + 1e-4)     "group": std over the group; "batch": over all B·G
 *
 * The std is torch's unbiased one (Bessel's n − 1). A NaN reward (a completion no reward could score)
 * takes no part in its group's mean or std, as TRL's nanmean / nanstd, and its advantage is 0 (TRL's
 * nan_to_num): it moves nothing. A group or batch of one has std 0 (TRL's guard for num_generations 1).
 * Completions come grouped: the G completions of one prompt are consecutive.
 */

export type ScaleRewards = 'group' | 'batch' | 'none';

export const SCALE_REWARDS: readonly ScaleRewards[] = ['group', 'batch', 'none'];

/** TRL's ε added to the std before dividing. */
export const STD_EPSILON = 1e-4;

export interface Advantages {
  /** One per completion, in the rewards' order. */
  advantages: Float32Array;
  /** The std each completion's advantage was (or, under "none", would be) divided by. */
  std: Float32Array;
  /** TRL's `frac_reward_zero_std`: the share of completions whose std is 0 (their group taught nothing). */
  zeroStdFraction: number;
}

/** The advantages of `rewards` (B·G values, G = groupSize consecutive per prompt). */
export function groupAdvantages(rewards: ArrayLike<number>, groupSize: number, scale: ScaleRewards = 'group'): Advantages {
  checkShape(rewards.length, groupSize, scale);
  const n = rewards.length;
  const mean = new Float64Array(n);
  const std = new Float32Array(n);
  for (let start = 0; start < n; start += groupSize) {
    const group = Array.from({ length: groupSize }, (_, i) => rewards[start + i]);
    const m = nanMean(group);
    const s = groupSize > 1 ? nanStd(group) : 0;
    for (let i = 0; i < groupSize; i++) {
      mean[start + i] = m;
      if (scale !== 'batch') std[start + i] = s;
    }
  }
  if (scale === 'batch') std.fill(n > 1 ? nanStd(Array.from(rewards)) : 0);
  const advantages = new Float32Array(n);
  let zeroStd = 0;
  for (let i = 0; i < n; i++) {
    let a = rewards[i] - mean[i];
    if (scale !== 'none') a /= std[i] + STD_EPSILON;
    advantages[i] = Number.isNaN(a) ? 0 : a;
    if (Math.abs(std[i]) <= 1e-8) zeroStd++; // torch.isclose(std, 0): |std| ≤ atol 1e-8
  }
  return { advantages, std, zeroStdFraction: n > 0 ? zeroStd / n : 0 };
}

function checkShape(n: number, groupSize: number, scale: string): void {
  if (!Number.isInteger(groupSize) || groupSize < 1) throw new RangeError(`groupAdvantages: num_generations must be a positive integer, got ${groupSize}`);
  if (n % groupSize !== 0) throw new RangeError(`groupAdvantages: ${n} rewards do not split into groups of num_generations ${groupSize}`);
  if (!(SCALE_REWARDS as readonly string[]).includes(scale)) throw new RangeError(`groupAdvantages: scale_rewards must be one of ${SCALE_REWARDS.join(', ')}, got "${scale}"`);
}

/** The mean of the values that are not NaN (NaN when none is). */
export function nanMean(xs: readonly number[]): number {
  let sum = 0;
  let count = 0;
  for (const x of xs) {
    if (Number.isNaN(x)) continue;
    sum += x;
    count++;
  }
  return count > 0 ? sum / count : NaN;
}

/** The unbiased std of the values that are not NaN, as TRL's nanstd (NaN when fewer than two are). */
export function nanStd(xs: readonly number[]): number {
  const m = nanMean(xs);
  let sq = 0;
  let count = 0;
  for (const x of xs) {
    if (Number.isNaN(x)) continue;
    sq += (x - m) ** 2;
    count++;
  }
  return count > 1 ? Math.sqrt(sq / (count - 1)) : NaN;
}
