/**
 * The built-in rewards: `exact-number` (the completion's final number equals the row's answer) and
 * `format` (the completion matches a regular expression). Each scores 1 or 0.
 */
import { finalNumber, sameNumber } from './final_number.js';
import type { Reward, RewardRow } from './reward.js';

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

/**
 * 1 when the completion matches `pattern`, else 0. A string pattern is compiled with `flags`
 * (default none: `^`/`$` anchor the whole completion; pass "s" for `.` to cross lines, "m" for
 * per-line anchors); an invalid one is refused here, naming it. The match runs on the main thread:
 * a pattern with catastrophic backtracking would block it (no timeout can interrupt a synchronous
 * regex), so keep format patterns simple, or put an elaborate check in a user module (user_module.ts),
 * whose calls run in a worker that a timeout terminates.
 */
export function formatReward(pattern: string | RegExp, flags = '', name = 'format'): Reward {
  let re: RegExp;
  try {
    re = typeof pattern === 'string' ? new RegExp(pattern, flags) : new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  } catch (err) {
    throw new SyntaxError(`format reward: invalid pattern ${JSON.stringify(String(pattern))}: ${(err as Error).message}`);
  }
  return { name, score: (_prompt: string, completion: string): number => (re.test(completion) ? 1 : 0) };
}
