/**
 * The built-in rewards: `exact-number` (the completion's final number equals the row's answer) and
 * `format` (the completion matches a regular expression). Each scores 1 or 0.
 */
import { finalNumber, sameNumber } from './final_number.js';
import type { Reward, RewardRow } from './reward.js';
import { DEFAULT_REWARD_TIMEOUT_MS, WorkerHost } from './worker_host.js';

/**
 * 1 when the completion's final number (final_number.ts: `#### 42`, `\boxed{42}`, else the last
 * number) equals the answer's, else 0. The answer is `row[answerField]`: a number, or a text read the
 * same way (a GSM8K answer field, reasoning then `#### 72`, gives 72). A row without a readable answer
 * is an error naming the field (the reward fails on that row; combine.ts says so).
 */
export function exactNumberReward(answerField = 'answer', name = 'exact-number'): Reward {
  return {
    name,
    score(_prompt: string, completion: string, row: RewardRow): number {
      const expected = answerOf(row, answerField);
      const given = finalNumber(completion);
      return given !== null && sameNumber(given, expected) ? 1 : 0;
    },
  };
}

function answerOf(row: RewardRow, field: string): number {
  const raw = row[field];
  if (typeof raw === 'number' && Number.isFinite(raw)) return raw;
  if (typeof raw === 'string') {
    const n = finalNumber(raw);
    if (n !== null) return n;
  }
  throw new Error(`the row's answer field "${field}" holds no number (${raw === undefined ? 'missing' : JSON.stringify(raw).slice(0, 80)})`);
}

export interface FormatRewardOptions {
  /** RegExp flags (default none: `^`/`$` anchor the whole completion; "s" lets `.` cross lines, "m" anchors per line). */
  flags?: string;
  /** The reward's name (default "format"). */
  name?: string;
  /** The deadline of one match, in ms (default 10 s). */
  timeoutMs?: number;
}

/**
 * 1 when the completion matches `pattern`, else 0. An invalid pattern is refused here, naming it.
 * The match runs in a worker thread (worker_host.ts), started at the first call: a pattern with
 * catastrophic backtracking costs one timeout, not the run. `close()` ends the worker.
 */
export function formatReward(pattern: string | RegExp, options: FormatRewardOptions = {}): Reward {
  const source = typeof pattern === 'string' ? pattern : pattern.source;
  const flags = (typeof pattern === 'string' ? options.flags ?? '' : pattern.flags).replace(/[gy]/g, ''); // a stateful lastIndex would alternate results
  try {
    new RegExp(source, flags);
  } catch (err) {
    throw new SyntaxError(`format reward: invalid pattern ${JSON.stringify(source)}: ${(err as Error).message}`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_REWARD_TIMEOUT_MS;
  const name = options.name ?? 'format';
  const host = new WorkerHost({ kind: 'regex', source, flags }, timeoutMs, `format reward "${name}" (${source})`);
  return { name, timeoutMs, score: (_prompt: string, completion: string) => host.call('', completion, {}), close: () => host.close() };
}
