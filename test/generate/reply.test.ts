/**
 * streamReply: the streamed pieces make the reply's text, an end token is not part of it, the reply
 * never runs past the model's positions; promptIds as transformers encodes a plain prompt.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeTokenizer } from '../../src/data/tokenizer.js';
import type { Generator } from '../../src/generate/load_generator.js';
import { promptIds, replySummary, streamReply } from '../../src/generate/reply.js';
import type { Gpt2Spec } from '../../src/nn/models/index.js';
import { randomModel } from './families.js';

const SPEC: Gpt2Spec = { type: 'gpt2', vocabSize: 256, context: 16, layers: 1, width: 16, heads: 2, dropout: 0 };
const g: Generator = {
  model: randomModel(SPEC, 9), spec: SPEC, tokenizer: makeTokenizer('bytes'), eosIds: [], chatTemplate: null, source: 'test', weights: 'test', precision: 'fp32',
};

describe('streamReply', () => {
  it('streams the text it returns, stops at the positions, and leaves an end token out of the text', async () => {
    const pieces: string[] = [];
    const r = await streamReply(g, [104, 105], { maxNewTokens: 100 }, (p) => pieces.push(p));
    assert.equal(r.ids.length, 14, 'the 16 positions less the 2 of the prompt');
    assert.equal(r.stopReason, 'length');
    assert.equal(pieces.join(''), r.text);
    assert.match(replySummary(r), /^14 tokens in [\d.]+ s \([\d.]+ tok\/s decoding; prompt 2 tokens in [\d.]+ s\), stop: length$/);
    const ended = await streamReply(g, [104, 105], { eosIds: [r.ids[3]] }, () => {});
    assert.equal(ended.stopReason, 'eos');
    assert.deepEqual(ended.ids, r.ids.slice(0, r.ids.indexOf(r.ids[3]) + 1));
    assert.equal(ended.text, g.tokenizer.decode(ended.ids.slice(0, -1)));
    await assert.rejects(streamReply(g, Array(16).fill(1), {}, () => {}), /the prompt has 16 tokens; the model has 16 positions/);
  });

  it('promptIds: the text\'s ids (BOS first where the tokenizer adds one); an empty prompt starts a document', () => {
    assert.deepEqual(promptIds(makeTokenizer('bytes'), 'hi'), [104, 105]);
    assert.deepEqual(promptIds(makeTokenizer('gpt2'), ''), [50256]);
    assert.throws(() => promptIds(makeTokenizer('bytes'), ''), /the prompt is empty/);
  });
});
