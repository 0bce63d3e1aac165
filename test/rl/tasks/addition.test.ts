/** The built-in addition task (src/rl/tasks/addition.ts): seeded, distinct problems, a held-out split none of the training ones. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exactNumberReward } from '../../../src/rl/rewards/builtin.js';
import { additionDigits, additionTask } from '../../../src/rl/tasks/addition.js';

describe('addition task', () => {
  it('is the same for a seed, distinct problems, the held-out split disjoint from training', () => {
    const a = additionTask(2, 200, 50, 7);
    assert.deepEqual(additionTask(2, 200, 50, 7), a);
    assert.notDeepEqual(additionTask(2, 200, 50, 8).train, a.train);
    const all = [...a.train, ...a.heldOut].map((r) => r.prompt);
    assert.equal(new Set(all).size, 250);
    assert.deepEqual([a.train.length, a.heldOut.length], [200, 50]);
    for (const row of a.train) {
      const [x, y] = row.prompt.match(/\d+/g)!.map(Number);
      assert.equal(row.answer, x + y);
      assert.ok(x < 100 && y < 100);
    }
  });

  it('asks for the answer after ####, which exact-number reads', () => {
    const [row] = additionTask(3, 1, 0, 1).train;
    assert.match(row.prompt, /^What is \d+ \+ \d+\? Give the answer after ####\.\n$/);
    const reward = exactNumberReward();
    assert.equal(reward.score(row.prompt, `so #### ${row.answer}`, { ...row }), 1);
    assert.equal(reward.score(row.prompt, `#### ${row.answer + 1}`, { ...row }), 0);
  });

  it('names its digits; refuses another task, digits out of range, or more problems than exist', () => {
    assert.equal(additionDigits('addition'), 2);
    assert.equal(additionDigits('addition:4'), 4);
    assert.throws(() => additionDigits('countdown'), /--task countdown: not a built-in task/);
    assert.throws(() => additionDigits('addition:0'), /digits must be 1 to 9/);
    assert.throws(() => additionTask(1, 90, 20, 0), /addition:1 has 100 problems, fewer than 110 asked/);
  });
});
