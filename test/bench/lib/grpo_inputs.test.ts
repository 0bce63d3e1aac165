/**
 * bench:grpo's inputs: the stand-in tokenizer.json reads (with our loader) to the bytes of a text,
 * with no BOS or end token and a name for every id above the bytes; stepPrompts lists the prompts a
 * real `grpo --task` run takes, step by step (a reward module records what the run scored).
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stepPrompts, standInTokenizer, writeStandInTokenizer } from '../../../bench/lib/grpo_inputs.js';
import { loadHfTokenizer } from '../../../src/data/hf_tokenizer.js';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { createModel, llamaSpec } from '../../../src/nn/models/index.js';
import { runGrpo } from '../../../src/rl/grpo_run.js';
import { additionTask } from '../../../src/rl/tasks/addition.js';
import { tempDir } from '../../helpers/cluster.js';

const dir = tempDir('bench-grpo-inputs');
after(() => rmSync(dir, { recursive: true, force: true }));

describe('bench/lib/grpo_inputs', () => {
  it('the stand-in tokenizer encodes a text to its bytes, without BOS or end token, and names ids past the bytes', () => {
    const tokenizer = loadHfTokenizer(writeStandInTokenizer(dir, 300));
    const text = 'What is 12 + 34? Give the answer after ####.\n é';
    assert.deepEqual(Array.from(tokenizer.encode(text)), Array.from(Buffer.from(text, 'utf8')));
    assert.equal(tokenizer.bos, null);
    assert.equal(tokenizer.eos, null);
    assert.equal(tokenizer.vocabSize, 300);
    assert.equal(tokenizer.decode([...Buffer.from('12 + 34\n', 'utf8')]), '12 + 34\n');
    assert.equal(tokenizer.decode([256, 299]), 't256t299');
    assert.deepEqual(Array.from(tokenizer.encode('t256')), [116, 50, 53, 54], 'a stand-in is never produced by encoding');
  });

  it('refuses a vocabulary smaller than the bytes', () => {
    assert.throws(() => standInTokenizer(255), /at least 256 ids, got 255/);
  });

  it('stepPrompts: the task\'s training prompts in the order a grpo run takes them, step by step', async () => {
    const spec = llamaSpec('llama-tiny', 256, 96);
    const folder = join(dir, 'model');
    saveFolder(folder, createModel(spec, 1), spec);
    writeStandInTokenizer(folder, 256);
    const seen = join(dir, 'seen.jsonl');
    writeFileSync(seen, '');
    const reward = join(dir, 'record.mjs');
    writeFileSync(reward, `import { appendFileSync } from 'node:fs';\nexport default (prompt) => { appendFileSync(${JSON.stringify(seen)}, JSON.stringify(prompt) + '\\n'); return 0; };\n`);
    // 3 steps of 2 prompts over a task of 4: the second pass over the prompts reshuffles.
    await runGrpo({
      model: folder, task: { name: 'addition:1', size: 4, heldOut: 0 }, promptField: 'prompt', answerField: 'answer', rewards: [reward], batchSize: 4,
      generations: 2, maxCompletionLength: 2, maxSteps: 3, temperature: 1, beta: 0, epsilon: 0.2, lossType: 'dapo', scaleRewards: 'group', iterations: 1,
      maxGradNorm: 1, lr: 1e-6, weightDecay: 0, seed: 7, lora: {}, runDir: join(dir, 'run'),
    });
    // Each prompt is scored once per completion (G = 2), in order.
    const scored = readFileSync(seen, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string).filter((_, i) => i % 2 === 0);
    const listed = stepPrompts('addition:1', 4, 7, 3, 2);
    assert.deepEqual(listed.map((r) => r.prompt), scored);
    const train = additionTask(1, 4, 0, 7).train.map((r) => r.prompt);
    assert.deepEqual(new Set(listed.slice(0, 4).map((r) => r.prompt)), new Set(train), 'the first pass takes every prompt once');
  });
});
