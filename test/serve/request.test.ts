/** Request bodies: OpenAI's fields mapped to ours, wrong types and unserved fields refused by name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCompletionRequest } from '../../src/serve/request.js';

describe('completion requests', () => {
  it('map OpenAI fields to ours, with defaults', () => {
    const r = parseCompletionRequest({ model: 'm', prompt: ['hi'], stop: 'x', seed: 3, stream: true, stream_options: { include_usage: true } }, false);
    assert.deepEqual(r, { model: 'm', prompt: 'hi', maxTokens: 16, temperature: 1, topP: 1, seed: 3, stop: ['x'], stream: true, includeUsage: true, ignoreEos: false });
    const chat = parseCompletionRequest({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }], max_completion_tokens: 5 }, true);
    assert.deepEqual([chat.prompt, chat.maxTokens], [[{ role: 'user', content: 'ab' }], 5]);
    assert.equal(parseCompletionRequest({ model: 'm', prompt: 'hi', ignore_eos: true }, false).ignoreEos, true);
  });

  it('refuse wrong types and unserved fields, naming the field', () => {
    const bad = (body: unknown, chat: boolean, re: RegExp): void => assert.throws(() => parseCompletionRequest(body, chat), re);
    bad({ model: 'm', prompt: 'hi', top_p: 2 }, false, /'top_p' must be between 0 and 1/);
    bad({ model: 'm', prompt: 'hi', stop: ['a', 'b', 'c', 'd', 'e'] }, false, /'stop' must be/);
    bad({ model: 'm', prompt: 'hi', stream: 'yes' }, false, /'stream' must be a boolean/);
    bad({ model: 'm', prompt: 'hi', ignore_eos: 1 }, false, /'ignore_eos' must be a boolean/);
    bad({ model: 'm', prompt: 'hi', logprobs: 2 }, false, /'logprobs' is not supported/);
    bad({ model: 'm', prompt: 'hi', frobnicate: 1 }, false, /unknown field 'frobnicate'/);
    bad({ prompt: 'hi' }, false, /'model' must be a string/);
    bad({ model: 'm', messages: [{ role: 'user' }] }, true, /'messages\[0\]\.content' must be a string/);
  });
});
