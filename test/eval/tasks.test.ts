/** Task files and lm-eval's request encoding (src/eval/tasks.ts): the pieces the CLI test runs end to end. */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import { answerOf, encodePair, pairRow, readTask, shardOfTask, taskFigures } from '../../src/eval/tasks.js';
import { tempDir } from '../helpers/cluster.js';

const dir = tempDir('eval-tasks');
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: string[]): string {
  writeFileSync(join(dir, name), lines.join('\n'));
  return join(dir, name);
}

describe('eval task files', () => {
  it('tells the kind from the first line, an answer by index or by text', () => {
    const mc = readTask(file('mc.jsonl', ['{"context": "a", "choices": ["x", "y"], "answer": "y"}', '', '{"context": "b", "choices": ["x", "y", "z"], "answer": 2, "target_delimiter": ""}']));
    assert.equal(mc.kind, 'multiple-choice');
    assert.deepEqual(mc.docs.map((d) => [d.answer, d.delimiter]), [[1, ' '], [2, '']]);
    assert.equal(readTask(file('ll.jsonl', ['{"context": "a", "continuation": " b"}'])).kind, 'loglikelihood');
    const gen = readTask(file('gen.jsonl', ['{"prompt": "q", "answer": "4", "until": ["\\n"], "regex": "#### (\\\\d+)"}']));
    assert.equal(gen.kind, 'generate-until');
    assert.equal(gen.docs[0].context, 'q');
    assert.equal(gen.docs[0].maxTokens, 256);
  });

  it('refuses what is not a task document, naming the file and line', () => {
    const cases: [string[], RegExp][] = [
      [['{"context": "a"}'], /line 1: has none of "choices"/],
      [['{"context": "a", "choices": ["x", "y"], "answer": 0}', 'not json'], /line 2: is not JSON/],
      [['{"context": "a", "choices": ["x", "y"], "answer": 0}', '{"context": "a", "continuation": "b"}'], /line 2: is a loglikelihood document in a multiple-choice task file/],
      [['{"context": "a", "choices": ["x", "y"], "answer": 5}'], /"answer" must be a choice's index \(0\.\.1\) or one of the choices, got 5/],
      [['{"context": "a", "answer": "b", "regex": "("}'], /"regex" does not compile/],
      [['{"choices": ["x", "y"], "answer": 0}'], /"context" must be a string \(it is missing\)/],
      [[''], /holds no task documents/],
    ];
    cases.forEach(([lines, message], i) => assert.throws(() => readTask(file(`bad${i}.jsonl`, lines)), message));
    assert.throws(() => readTask(join(dir, 'missing.jsonl')), /missing\.jsonl: cannot be read \(ENOENT\)/);
  });

  it('encodes a request as lm-eval does: trailing spaces move to the continuation; an empty context is the start token', () => {
    const bytes = makeTokenizer('bytes');
    const moved = encodePair(bytes, 'the cat ', 'sat');
    assert.deepEqual([...moved.context], [...bytes.encode('the cat')]);
    assert.deepEqual([...moved.continuation], [...bytes.encode(' sat')]);
    const gpt2 = makeTokenizer('gpt2');
    const empty = encodePair(gpt2, '', ' hello');
    assert.deepEqual([...empty.context], [50256]);
    assert.deepEqual([...empty.continuation], [...gpt2.encode(' hello')]);
    // GPT-2's BPE joins " sat" into one token: the continuation is what the whole adds after the context.
    const whole = encodePair(gpt2, 'the cat', ' sat');
    assert.deepEqual([...whole.context, ...whole.continuation], [...gpt2.encode('the cat sat')]);
    assert.throws(() => encodePair(bytes, '', 'x'), /empty context, and the tokenizer has neither a BOS nor an end-of-text token/);
  });

  it('a row scores the continuation, cut from the left to the context', () => {
    const row = pairRow({ context: Int32Array.of(1, 2, 3, 4), continuation: Int32Array.of(5, 6) }, 4);
    assert.deepEqual([...row.ids], [3, 4, 5, 6]);
    assert.deepEqual([...row.scored], [0, 0, 1, 1]);
  });

  it('takes the regex\'s first group, or its match, as the answer; shards take every n-th document', () => {
    assert.equal(answerOf('so #### 42\n', /#### (\d+)/), '42');
    assert.equal(answerOf('the answer is 7', /\d+/), '7');
    assert.equal(answerOf('no number', /\d+/), '');
    assert.equal(answerOf('  plain  ', null), 'plain');
    const task = readTask(file('five.jsonl', Array.from({ length: 5 }, (_, i) => `{"context": "c${i}", "continuation": "x"}`)));
    assert.deepEqual(shardOfTask(task, 1, 2).docs.map((d) => d.context), ['c1', 'c3']);
    assert.deepEqual(taskFigures({ kind: 'multiple-choice', docs: 4, correct: 3, correctNorm: 1, logprob: 0, seconds: 1 }), { acc: 0.75, acc_norm: 0.25, docs: 4 });
  });
});
