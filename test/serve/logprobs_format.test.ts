/** OpenAI's two logprobs formats from scored tokens: the legacy lists (echo's first token null, top objects with the token itself, offsets), and chat's entries with bytes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chatLogprobs, completionLogprobs } from '../../src/serve/logprobs_format.js';

const text = (id: number): string => ['a', 'bc', 'é', 'a'][id];

describe('logprobs formats', () => {
  it('legacy: tokens, token_logprobs (null for an unscored first token), top objects holding the token, offsets adding the texts up', () => {
    const l = completionLogprobs([
      { id: 1, scores: null },
      { id: 2, scores: { id: 2, logprob: -2, top: [{ id: 1, logprob: -0.5 }] } },
      { id: 1, scores: { id: 1, logprob: -0.1, top: [{ id: 1, logprob: -0.1 }, { id: 2, logprob: -3 }] } },
    ], text, 7);
    assert.deepEqual(l, {
      tokens: ['bc', 'é', 'bc'],
      token_logprobs: [null, -2, -0.1],
      top_logprobs: [null, { bc: -0.5, é: -2 }, { bc: -0.1, é: -3 }],
      text_offset: [7, 9, 10],
    });
  });

  it('legacy: two ids of one text keep the more likely one\'s value (lm-eval compares the token\'s logprob to the largest)', () => {
    const l = completionLogprobs([{ id: 3, scores: { id: 3, logprob: -4, top: [{ id: 0, logprob: -0.2 }] } }], text);
    assert.deepEqual(l.top_logprobs, [{ a: -0.2 }]);
  });

  it('chat: token, logprob, UTF-8 bytes and the top list (without the token added)', () => {
    assert.deepEqual(chatLogprobs([{ id: 2, logprob: -1, top: [{ id: 0, logprob: -0.7 }] }], text), {
      content: [{ token: 'é', logprob: -1, bytes: [0xc3, 0xa9], top_logprobs: [{ token: 'a', logprob: -0.7, bytes: [0x61] }] }],
      refusal: null,
    });
  });
});
