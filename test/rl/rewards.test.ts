/**
 * The reward functions: the final number of a text (GSM8K's `#### 42`, `\boxed{}`, else the last
 * number), exact-number and format rewards, a user module run in a worker (default and named
 * exports, a hang that a timeout ends while the run goes on, load errors naming the file), and
 * several rewards combined with weights, a failed one scored NaN and named in a warning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { groupAdvantages } from '../../src/rl/advantages.js';
import { exactNumberReward, formatReward } from '../../src/rl/rewards/builtin.js';
import { type RewardFailure, scoreRewards } from '../../src/rl/rewards/combine.js';
import { finalNumber } from '../../src/rl/rewards/final_number.js';
import type { Reward } from '../../src/rl/rewards/reward.js';
import { userModuleReward } from '../../src/rl/rewards/user_module.js';

const dir = mkdtempSync(join(tmpdir(), 'smol-rewards-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function moduleFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('finalNumber', () => {
  const cases: [string, number | null][] = [
    ['Natalia sold 48/2 = 24 clips in May.\n#### 72', 72],
    ['so the total is 3 + 4.\n#### 1,234', 1234],
    ['#### $5', 5],
    ['#### -3 apples', -3],
    ['The answer is \\boxed{42}.', 42],
    ['first \\boxed{1} then \\boxed{\\text{ 2,500 }} ', 2500],
    ['costs $1,234.50 in total.', 1234.5],
    ['I think 3 then 17.', 17],
    ['-0.5 or .25', 0.25],
    ['no numbers here', null],
    ['\\boxed{x}', null],
    ['unclosed \\boxed{12 and 7', 7],
  ];
  for (const [text, expected] of cases) it(JSON.stringify(text), () => assert.equal(finalNumber(text), expected));
});

describe('built-in rewards', () => {
  it('exact-number: 1 when the final number equals the answer field (number, or GSM8K text), else 0', async () => {
    const r = exactNumberReward();
    assert.equal(await r.score('q', 'Adding up: 40 + 32 = 72.\n#### 72', { answer: 'She sold 48 + 24 = 72.\n#### 72' }), 1);
    assert.equal(await r.score('q', 'the answer is \\boxed{72.0}', { answer: 72 }), 1);
    assert.equal(await r.score('q', 'the answer is \\boxed{71}', { answer: 72 }), 0);
    assert.equal(await r.score('q', 'no idea', { answer: '72' }), 0);
    assert.equal(await exactNumberReward('target').score('q', '#### 1,000', { target: '$1000' }), 1);
  });
  it('exact-number: a row without a readable answer is an error naming the field', () => {
    assert.throws(() => exactNumberReward().score('q', '#### 1', { question: 'x' }), /answer field "answer" holds no number \(missing\)/);
    assert.throws(() => exactNumberReward('gold').score('q', '#### 1', { gold: 'none' }), /answer field "gold" holds no number \("none"\)/);
  });
  it('format: 1 when the completion matches the pattern, else 0; an invalid pattern is refused naming it', async () => {
    const r = formatReward('^<think>.*</think>\\s*<answer>.*</answer>$', { flags: 's' });
    const g = formatReward(/\d/g); // a global regex's lastIndex must not make repeated tests alternate
    try {
      assert.equal(await r.score('q', '<think>a\nb</think>\n<answer>4</answer>', {}), 1);
      assert.equal(await r.score('q', '<answer>4</answer>', {}), 0);
      assert.deepEqual([await g.score('', 'a1', {}), await g.score('', 'a1', {}), await g.score('', 'a1', {})], [1, 1, 1]);
    } finally {
      await r.close!();
      await g.close!();
    }
    assert.throws(() => formatReward('(unclosed'), /format reward: invalid pattern "\(unclosed"/);
  });
  it('format: a pattern that backtracks catastrophically costs one timeout; the next match is answered', async () => {
    // 1.5 s, not less: the replacement worker the next match waits for may take most of a second to start on a loaded machine.
    const r = formatReward('^(a+)+$', { timeoutMs: 1500 });
    try {
      await assert.rejects(Promise.resolve(r.score('', `${'a'.repeat(40)}!`, {})), /format reward "format" \(\^\(a\+\)\+\$\) timed out after 1500 ms/);
      assert.equal(await r.score('', 'aaa', {}), 1);
    } finally {
      await r.close!();
    }
  });
});

describe('user reward modules (worker thread)', () => {
  it('calls the default export with (prompt, completion, row), sync or async', async () => {
    const file = moduleFile('len.mjs', 'export default async (prompt, completion, row) => completion.length + row.bonus + (prompt === "p" ? 100 : 0);');
    const r = await userModuleReward(file);
    try {
      assert.equal(r.name, 'len');
      assert.equal(await r.score('p', 'abcd', { bonus: 0.5 }), 104.5);
    } finally {
      await r.close!();
    }
  });
  it('calls a named export, or the only exported function', async () => {
    const file = moduleFile('named.mjs', 'export const helper = 3;\nexport function reward(p, c) { return c === "yes" ? 1 : 0; }\nexport function other() { return 7; }');
    const named = await userModuleReward(file, { exportName: 'reward' });
    const only = await userModuleReward(moduleFile('only.mjs', 'export const reward = () => 0.25;'));
    try {
      assert.equal(await named.score('', 'yes', {}), 1);
      assert.equal(await only.score('', '', {}), 0.25);
    } finally {
      await named.close!();
      await only.close!();
    }
  });
  it('refuses a missing file, a module without a function, an ambiguous one, or one that throws on load, naming the file', async () => {
    await assert.rejects(userModuleReward(join(dir, 'absent.mjs')), /absent\.mjs: no such file/);
    await assert.rejects(userModuleReward(moduleFile('none.mjs', 'export const x = 1;')), /none\.mjs has no default export that is a function and no exported function/);
    await assert.rejects(userModuleReward(moduleFile('two.mjs', 'export const a = () => 1; export const b = () => 2;')), /two\.mjs .*several named ones \(a, b\): name one/);
    await assert.rejects(userModuleReward(moduleFile('named2.mjs', 'export default () => 1;'), { exportName: 'nope' }), /named2\.mjs exports no function named "nope"/);
    await assert.rejects(userModuleReward(moduleFile('boom.mjs', 'throw new Error("no config");')), /boom\.mjs: Error: no config/);
  });
  it('a hanging call times out, its worker is replaced, and the next call is answered', async () => {
    const file = moduleFile('hang.mjs', 'export default (p, completion) => { if (completion === "hang") for (;;) {} return completion.length; };');
    // 1.5 s: a loaded CI machine may take most of a second to start the replacement worker the next call waits for.
    const r = await userModuleReward(file, { timeoutMs: 1500 });
    try {
      const started = Date.now();
      await assert.rejects(Promise.resolve(r.score('', 'hang', {})), /a call of reward module .*hang\.mjs timed out after 1500 ms/);
      assert.ok(Date.now() - started < 6000, 'the timeout ended the call');
      assert.equal(await r.score('', 'four', {}), 4);
      await assert.rejects(Promise.resolve(r.score('', 'x', { f: () => 1 })), /the row cannot be sent to reward module .*hang\.mjs: .*could not be cloned/);
      assert.equal(await r.score('', 'three', {}), 5, 'the worker lives on after a row it could not take');
    } finally {
      await r.close!();
    }
  });
});

describe('scoreRewards: several rewards with weights; failures scored NaN, named, never stopping the run', () => {
  it('sums weighted values and keeps each reward\'s own', async () => {
    const items = [
      { prompt: 'q1', completion: '<answer>#### 5</answer>', row: { answer: 5 }, rowIndex: 0 },
      { prompt: 'q1', completion: '#### 6', row: { answer: 5 }, rowIndex: 0 },
    ];
    const format = formatReward('^<answer>.*</answer>$');
    const scores = await scoreRewards([{ reward: exactNumberReward() }, { reward: format, weight: 0.5 }], items);
    await format.close!();
    assert.deepEqual(Array.from(scores.total), [1.5, 0]);
    assert.deepEqual(Array.from(scores.perReward['exact-number']), [1, 0]);
    assert.deepEqual(Array.from(scores.perReward.format), [1, 0]);
    assert.deepEqual(scores.failures, []);
  });

  it('a reward that throws, returns NaN or a string, or hangs is NaN there; a completion every reward failed on gets advantage 0', async () => {
    const hangs = await userModuleReward(moduleFile('sometimes.mjs', [
      'export default (p, c) => {',
      '  if (c === "hang") for (;;) {}',
      '  if (c === "throw") throw new RangeError("bad completion");',
      '  if (c === "nan") return NaN;',
      '  if (c === "text") return "1";',
      '  return 2;',
      '};',
    ].join('\n')), { timeoutMs: 1500, name: 'mine' });
    const slow: Reward = { name: 'slow', score: (_p, c) => (c === 'hang' ? new Promise<number>(() => {}) : 1) };
    const warnings: string[] = [];
    const failures: RewardFailure[] = [];
    try {
      const items = ['ok', 'hang', 'throw', 'nan', 'text', 'ok'].map((completion, i) => ({ prompt: 'p', completion, row: { i }, rowIndex: 10 + i }));
      const scores = await scoreRewards([{ reward: hangs, weight: 2 }, { reward: slow }], items, {
        timeoutMs: 200,
        warn: (m, f) => {
          warnings.push(m);
          failures.push(f);
        },
      });
      assert.deepEqual(Array.from(scores.perReward.mine), [2, NaN, NaN, NaN, NaN, 2]);
      assert.deepEqual(Array.from(scores.perReward.slow), [1, NaN, 1, 1, 1, 1]);
      assert.deepEqual(Array.from(scores.total), [5, NaN, 1, 1, 1, 5]);
      assert.equal(failures.length, 5, 'each failure told once');
      assert.deepEqual(scores.failures.map((f) => [f.reward, f.completion, f.rowIndex, f.reason]), [
        ['mine', 1, 11, 'timeout'], ['slow', 1, 11, 'timeout'], ['mine', 2, 12, 'threw'], ['mine', 3, 13, 'not-finite'], ['mine', 4, 14, 'threw'],
      ]);
      assert.match(warnings.find((w) => w.includes('completion 2'))!, /reward "mine" failed on completion 2 \(data row 12\): it threw: RangeError: bad completion/);
      assert.match(warnings.find((w) => w.includes('"slow"'))!, /reward "slow" failed on completion 1 \(data row 11\): no answer in time: reward "slow" timed out after 200 ms/);
      assert.match(warnings.find((w) => w.includes('completion 4'))!, /returned string \(1\), not a number/);
      // The all-failed completion: out of its group's statistics, advantage 0 (TRL's nan handling).
      const adv = groupAdvantages(scores.total, 3, 'group').advantages;
      assert.equal(adv[1], 0);
      assert.ok(Math.abs(adv[0] - 2 / (Math.SQRT2 * 2 + 1e-4)) < 1e-6, `advantage of 5 in group [5, NaN, 1]: ${adv[0]}`);
    } finally {
      await hangs.close!();
    }
  });

  it('refuses two rewards of one name and a non-finite weight', async () => {
    const r = exactNumberReward();
    await assert.rejects(scoreRewards([{ reward: r }, { reward: r }], []), /two rewards are named "exact-number"/);
    await assert.rejects(scoreRewards([{ reward: r, weight: NaN }], []), /reward "exact-number" has weight NaN/);
  });
});
