/** Request bodies: OpenAI's fields mapped to ours, wrong types and unserved fields refused by name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCompletionRequest } from '../../src/serve/request.js';

describe('completion requests', () => {
  it('map OpenAI fields to ours, with defaults', () => {
    const r = parseCompletionRequest({ model: 'm', prompt: ['hi'], stop: 'x', seed: 3, stream: true, stream_options: { include_usage: true } }, false);
    assert.deepEqual(r, { model: 'm', prompt: 'hi', maxTokens: 16, temperature: 1, topP: 1, seed: 3, stop: ['x'], stream: true, includeUsage: true, ignoreEos: false, topK: 0, minP: 0, repetitionPenalty: 1, minTokens: 0 });
    const chat = parseCompletionRequest({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }], max_completion_tokens: 5 }, true);
    assert.deepEqual([chat.prompt, chat.maxTokens], [[{ role: 'user', content: 'ab' }], 5]);
    assert.equal(parseCompletionRequest({ model: 'm', prompt: 'hi', ignore_eos: true }, false).ignoreEos, true);
    // vLLM's sampling extensions (benchmark_serving, guidellm send them): -1 is vLLM's top_k "off".
    const vllm = parseCompletionRequest({ model: 'm', prompt: 'hi', top_k: 40, min_p: 0.05, repetition_penalty: 1.1, min_tokens: 4 }, false);
    assert.deepEqual([vllm.topK, vllm.minP, vllm.repetitionPenalty, vllm.minTokens], [40, 0.05, 1.1, 4]);
    assert.equal(parseCompletionRequest({ model: 'm', prompt: 'hi', top_k: -1 }, false).topK, 0);
  });

  it('refuse wrong types and unserved fields, naming the field', () => {
    const bad = (body: unknown, chat: boolean, re: RegExp): void => assert.throws(() => parseCompletionRequest(body, chat), re);
    bad({ model: 'm', prompt: 'hi', top_p: 2 }, false, /'top_p' must be between 0 and 1/);
    bad({ model: 'm', prompt: 'hi', stop: ['a', 'b', 'c', 'd', 'e'] }, false, /'stop' must be/);
    bad({ model: 'm', prompt: 'hi', stream: 'yes' }, false, /'stream' must be a boolean/);
    bad({ model: 'm', prompt: 'hi', ignore_eos: 1 }, false, /'ignore_eos' must be a boolean/);
    bad({ model: 'm', prompt: 'hi', top_k: -2 }, false, /'top_k' must be at least -1/);
    bad({ model: 'm', prompt: 'hi', min_p: 1.5 }, false, /'min_p' must be between 0 and 1/);
    bad({ model: 'm', prompt: 'hi', repetition_penalty: 0 }, false, /'repetition_penalty' must be between/);
    bad({ model: 'm', prompt: 'hi', min_tokens: 1.5 }, false, /'min_tokens' must be an integer/);
    bad({ model: 'm', prompt: 'hi', logprobs: 2 }, false, /'logprobs' is not supported/);
    bad({ model: 'm', prompt: 'hi', frobnicate: 1 }, false, /unknown field 'frobnicate'/);
    bad({ prompt: 'hi' }, false, /'model' must be a string/);
    bad({ model: 'm', messages: [{ role: 'user' }] }, true, /'messages\[0\]\.content' must be a string/);
  });
});
