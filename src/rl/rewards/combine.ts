/**
 * Several rewards combined into one scalar per completion, as TRL 1.13 combines its reward functions
 * (multi_objective_aggregation "sum_then_normalize"): the weighted sum over the rewards that scored
 * (TRL's nansum). A reward that fails on a completion — it throws, returns a value that is not a
 * finite number, or does not answer within its timeout — scores NaN there: TRL's "does not apply"
 * (a reward function returning None). It then neither rewards nor punishes that completion; where
 * every reward failed, the total is NaN, and advantages.ts gives that completion advantage 0 and
 * leaves it out of its group's mean and std, as TRL does. Each failure is named in a warning (reward,
 * completion, row, reason) and returned; nothing stops the run.
 */
import { TimeoutError } from '../../util/errors.js';
import type { Reward, RewardRow } from './reward.js';
import { DEFAULT_REWARD_TIMEOUT_MS } from './user_module.js';

/** How much longer than its own deadline a reward that enforces one is waited for (its timeout, not ours, should name the failure). */
const OWN_DEADLINE_GRACE_MS = 1000;

export interface WeightedReward {
  reward: Reward;
  /** reward_weights: default 1. */
  weight?: number;
}

/** One completion to score: its prompt text, completion text and the data set row (with its index, for warnings). */
export interface ScoreItem {
  prompt: string;
  completion: string;
  row: RewardRow;
  /** The row's index in the data set. */
  rowIndex?: number;
}

export interface RewardFailure {
  reward: string;
  /** The completion's index in the batch. */
  completion: number;
  rowIndex?: number;
  reason: 'threw' | 'not-finite' | 'timeout';
  message: string;
}

export interface RewardScores {
  /** Per completion: Σ weight·value over the rewards that scored; NaN where none did. */
  total: Float64Array;
  /** Per reward (by name): its own values, NaN where it failed (TRL's rewards/<name>/mean takes the nanmean). */
  perReward: Record<string, Float64Array>;
  /** In completion order, then the rewards' order. */
  failures: RewardFailure[];
}

export interface ScoreOptions {
  /** The deadline of one in-process reward call, in ms (default 10 s; a user module keeps its own, user_module.ts). */
  timeoutMs?: number;
  /** Told of each failure (default: a line on stderr through console.warn). */
  warn?: (message: string, failure: RewardFailure) => void;
}

/** Scores every item with every reward (each reward's calls in turn; the rewards side by side). */
export async function scoreRewards(rewards: readonly WeightedReward[], items: readonly ScoreItem[], options: ScoreOptions = {}): Promise<RewardScores> {
  checkRewards(rewards);
  const timeoutMs = options.timeoutMs ?? DEFAULT_REWARD_TIMEOUT_MS;
  const warn = options.warn ?? ((message: string) => console.warn(message));
  const failures: RewardFailure[] = [];
  const columns = await Promise.all(rewards.map(async ({ reward }) => {
    const values = new Float64Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const outcome = await scoreOne(reward, items[i], reward.timeoutMs !== undefined ? reward.timeoutMs + OWN_DEADLINE_GRACE_MS : timeoutMs);
      if (typeof outcome === 'number') {
        values[i] = outcome;
        continue;
      }
      values[i] = NaN;
      const failure: RewardFailure = { reward: reward.name, completion: i, rowIndex: items[i].rowIndex, ...outcome };
      failures.push(failure);
      warn(describeFailure(failure), failure);
    }
    return values;
  }));
  const total = new Float64Array(items.length).map((_, i) => weightedNanSum(columns.map((c) => c[i]), rewards));
  const order = new Map(rewards.map(({ reward }, k) => [reward.name, k]));
  failures.sort((a, b) => a.completion - b.completion || order.get(a.reward)! - order.get(b.reward)!);
  return { total, perReward: Object.fromEntries(rewards.map(({ reward }, k) => [reward.name, columns[k]])), failures };
}

function checkRewards(rewards: readonly WeightedReward[]): void {
  if (rewards.length === 0) throw new RangeError('scoreRewards: no rewards');
  const names = new Set<string>();
  for (const { reward, weight } of rewards) {
    if (names.has(reward.name)) throw new RangeError(`scoreRewards: two rewards are named "${reward.name}" (their metrics would collide): give one a name`);
    names.add(reward.name);
    if (weight !== undefined && !Number.isFinite(weight)) throw new RangeError(`scoreRewards: reward "${reward.name}" has weight ${weight}, not a finite number`);
  }
}

type Failed = Pick<RewardFailure, 'reason' | 'message'>;

/** The reward's value, or why it failed; never throws. */
async function scoreOne(reward: Reward, item: ScoreItem, timeoutMs: number): Promise<number | Failed> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`reward "${reward.name}"`, [], timeoutMs)), timeoutMs);
    });
    const value = await Promise.race([Promise.resolve().then(() => reward.score(item.prompt, item.completion, item.row)), deadline]);
    if (typeof value !== 'number' || !Number.isFinite(value)) return { reason: 'not-finite', message: `returned ${typeof value === 'number' ? value : `${typeof value} ${String(value).slice(0, 40)}`}` };
    return value;
  } catch (err) {
    if (err instanceof TimeoutError) return { reason: 'timeout', message: err.message };
    return { reason: 'threw', message: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

function weightedNanSum(values: number[], rewards: readonly WeightedReward[]): number {
  let sum = 0;
  let scored = 0;
  values.forEach((v, k) => {
    if (Number.isNaN(v)) return;
    sum += v * (rewards[k].weight ?? 1);
    scored++;
  });
  return scored > 0 ? sum : NaN;
}

function describeFailure(f: RewardFailure): string {
  const where = `completion ${f.completion}${f.rowIndex !== undefined ? ` (data row ${f.rowIndex})` : ''}`;
  return `reward "${f.reward}" failed on ${where}: ${f.reason === 'timeout' ? 'no answer in time' : f.reason === 'threw' ? 'it threw' : 'not a finite number'}: ${f.message}; scored as NaN (skipped, as TRL skips a reward returning None)`;
}
