/**
 * A built-in task's split as JSONL (src/rl/tasks/task_data.ts, `smolcluster task-data`): the rows are
 * grpo --task's own, the training split never holds a problem of the held-out split grpo evaluates
 * on (whatever its size), and `train` reads the file as plain prompt/completion data.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadChat } from '../../../src/data/chat.js';
import { makeTokenizer } from '../../../src/data/tokenizer.js';
import { exactNumberReward } from '../../../src/rl/rewards/builtin.js';
import { additionTask } from '../../../src/rl/tasks/addition.js';
import { taskDataRows, writeTaskData } from '../../../src/rl/tasks/task_data.js';
import { tempDir } from '../../helpers/cluster.js';

const dir = tempDir('task-data');
after(() => rmSync(dir, { recursive: true, force: true }));

describe('task-data', () => {
  it('writes grpo --task\'s rows: the training split, or the held-out one', () => {
    const split = additionTask(2, 300, 40, 5);
    const train = taskDataRows({ task: 'addition:2', size: 300, heldOut: 40, seed: 5, split: 'train' });
    const heldOut = taskDataRows({ task: 'addition:2', size: 300, heldOut: 40, seed: 5, split: 'held-out' });
    assert.deepEqual(train.map((r) => [r.prompt, r.answer]), split.train.map((r) => [r.prompt, r.answer]));
    assert.deepEqual(heldOut.map((r) => [r.prompt, r.answer]), split.heldOut.map((r) => [r.prompt, r.answer]));
    // The completion is what exact-number scores 1.
    const reward = exactNumberReward();
    assert.ok(train.every((r) => r.completion === `#### ${r.answer}\n` && reward.score(r.prompt, r.completion, { ...r }) === 1));
  });

  it('never writes a held-out problem into the training split, whatever --task-size (up to every other problem)', () => {
    for (const [task, heldOut, seed] of [['addition:2', 200, 0], ['addition:1', 20, 3], ['addition', 100, 11]] as const) {
      const evaluated = new Set(additionTask(task === 'addition:1' ? 1 : 2, 1, heldOut, seed).heldOut.map((r) => r.prompt));
      assert.equal(evaluated.size, heldOut);
      const all = (task === 'addition:1' ? 100 : 10_000) - heldOut;
      for (const size of [1, 50, Math.floor(all / 2), all]) {
        const train = taskDataRows({ task, size, heldOut, seed, split: 'train' });
        assert.equal(train.length, size);
        const leaked = train.filter((r) => evaluated.has(r.prompt));
        assert.deepEqual(leaked, [], `${task} --task-size ${size} --held-out ${heldOut} --seed ${seed}`);
        // grpo --task with these sizes evaluates on exactly that held-out split.
        assert.deepEqual(new Set(additionTask(task === 'addition:1' ? 1 : 2, size, heldOut, seed).heldOut.map((r) => r.prompt)), evaluated);
      }
    }
  });

  it('is read by train as plain prompt/completion data: the completion learned, the prompt not', () => {
    const file = join(dir, 'sft.jsonl');
    assert.equal(writeTaskData(file, { task: 'addition:2', size: 12, heldOut: 4, seed: 1, split: 'train' }), 12);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; completion: string; answer: number });
    assert.equal(lines.length, 12);
    const data = loadChat({ file, tokenizer: makeTokenizer('bytes'), format: null });
    assert.deepEqual(data.documents, { train: 11, test: 1 });
    const T = data.train.inputShape[0];
    const learned = Array.from(data.train.labels.subarray(0, T)).filter((l) => l >= 0);
    assert.equal(Buffer.from(learned).toString('utf8'), lines[0].completion);
  });
});
