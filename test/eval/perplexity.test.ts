/** transformers' strided perplexity windows (src/eval/perplexity.ts): which tokens each window scores. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addTallies, fileFigures, strideWindows } from '../../src/eval/perplexity.js';

describe('perplexity windows', () => {
  it('without overlap every window but the first token of each is scored', () => {
    assert.deepEqual(strideWindows(10, 4, 4), [{ begin: 0, end: 4, scoreFrom: 1 }, { begin: 4, end: 8, scoreFrom: 5 }, { begin: 8, end: 10, scoreFrom: 9 }]);
  });

  it('with a stride below the context each window scores only what the one before did not', () => {
    const windows = strideWindows(10, 4, 2);
    assert.deepEqual(windows, [{ begin: 0, end: 4, scoreFrom: 1 }, { begin: 2, end: 6, scoreFrom: 4 }, { begin: 4, end: 8, scoreFrom: 6 }, { begin: 6, end: 10, scoreFrom: 8 }]);
    // Every token but the first scored exactly once.
    const scored = windows.flatMap((w) => Array.from({ length: w.end - w.scoreFrom }, (_, i) => w.scoreFrom + i));
    assert.deepEqual(scored, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('refuses a stride past the context, which would leave tokens unscored', () => {
    assert.throws(() => strideWindows(10, 4, 5), /--stride: 5 is more than the context, 4/);
  });

  it('figures come from summed tallies, so shards add up to one process', () => {
    const t = addTallies([{ nll: 3, tokens: 2, correct: 1, seconds: 1 }, { nll: 1, tokens: 2, correct: 2, seconds: 1 }]);
    assert.deepEqual(fileFigures(t), { loss: 1, perplexity: Math.E, tokenAccuracy: 0.75, tokens: 4, tokensPerSecond: 2 });
  });
});
