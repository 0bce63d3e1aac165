/** Request bodies: OpenAI's fields mapped to ours, wrong types and unserved fields refused by name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCompletionRequest } from '../../src/serve/request.js';

describe('completion requests', () => {
  it('map OpenAI fields to ours, with defaults', () => {
    const r = parseCompletionRequest({ model: 'm', prompt: ['hi'], stop: 'x', seed: 3, stream: true, stream_options: { include_usage: true } }, false);
    assert.deepEqual(r, {
      model: 'm', prompts: ['hi'], maxTokens: 16, temperature: 1, topP: 1, seed: 3, stop: ['x'], stream: true, includeUsage: true, ignoreEos: false, topK: 0, minP: 0, repetitionPenalty: 1, minTokens: 0,
      n: 1, logprobs: null, echo: false, presencePenalty: 0, frequencyPenalty: 0, logitBias: [], grammar: null, tools: [], toolChoice: 'none',
    });
    const chat = parseCompletionRequest({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }], max_completion_tokens: 5 }, true);
    assert.deepEqual([chat.prompts, chat.maxTokens], [[[{ role: 'user', content: 'ab' }]], 5]);
    assert.equal(parseCompletionRequest({ model: 'm', prompt: 'hi', ignore_eos: true }, false).ignoreEos, true);
    // vLLM's sampling extensions (benchmark_serving, guidellm send them): -1 is vLLM's top_k "off".
    const vllm = parseCompletionRequest({ model: 'm', prompt: 'hi', top_k: 40, min_p: 0.05, repetition_penalty: 1.1, min_tokens: 4 }, false);
    assert.deepEqual([vllm.topK, vllm.minP, vllm.repetitionPenalty, vllm.minTokens], [40, 0.05, 1.1, 4]);
    assert.equal(parseCompletionRequest({ model: 'm', prompt: 'hi', top_k: -1 }, false).topK, 0);
  });

  it('map logprobs, echo, n, the penalties and logit_bias (issues 48, 49)', () => {
    const c = parseCompletionRequest({ model: 'm', prompt: [[1, 2, 3]], logprobs: 5, echo: true, max_tokens: 0, n: 3, presence_penalty: -2, frequency_penalty: 1.5, logit_bias: { 7: -100, 12: 2.5 } }, false);
    assert.deepEqual([c.prompts, c.logprobs, c.echo, c.maxTokens, c.n, c.presencePenalty, c.frequencyPenalty, c.logitBias], [[[1, 2, 3]], 5, true, 0, 3, -2, 1.5, [[7, -100], [12, 2.5]]]);
    assert.equal(parseCompletionRequest({ model: 'm', prompt: 'hi', logprobs: 0 }, false).logprobs, 0);
    // Several prompts (OpenAI's batch; lm-eval's batch_size > 1): strings, token lists, or both.
    assert.deepEqual(parseCompletionRequest({ model: 'm', prompt: ['a', [4, 5], 'b'] }, false).prompts, ['a', [4, 5], 'b']);
    assert.deepEqual(parseCompletionRequest({ model: 'm', prompt: [4, 5] }, false).prompts, [[4, 5]]);
    assert.equal(parseCompletionRequest({ model: 'm', prompt: 'hi', logprobs: false }, false).logprobs, null);
    const chat = (extra: object): number | null => parseCompletionRequest({ model: 'm', messages: [{ role: 'user', content: 'a' }], ...extra }, true).logprobs;
    assert.deepEqual([chat({}), chat({ logprobs: true }), chat({ logprobs: true, top_logprobs: 20 }), chat({ logprobs: false, top_logprobs: 0 })], [null, 0, 20, null]);
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
    bad({ model: 'm', prompt: ['a', ''] }, false, /'prompt' must be a non-empty string, an array of token ids, or an array of either/);
    bad({ model: 'm', prompt: [[1], [-1]] }, false, /'prompt' must be/);
    bad({ model: 'm', prompt: Array(129).fill('a') }, false, /'prompt' holds 129 prompts, at most 128 per request/);
    bad({ model: 'm', prompt: 'hi', logprobs: 21 }, false, /'logprobs' must be at most 20, got 21/);
    bad({ model: 'm', prompt: 'hi', logprobs: true }, false, /'logprobs' must be an integer/);
    bad({ model: 'm', prompt: 'hi', max_tokens: 0 }, false, /'max_tokens' must be at least 1/);
    bad({ model: 'm', prompt: 'hi', top_logprobs: 2 }, false, /'top_logprobs' is not supported/);
    bad({ model: 'm', prompt: 'hi', echo: 1 }, false, /'echo' must be a boolean/);
    bad({ model: 'm', prompt: 'hi', best_of: 2 }, false, /'best_of' is not supported by this server \(use n/);
    bad({ model: 'm', prompt: 'hi', n: 0 }, false, /'n' must be at least 1/);
    bad({ model: 'm', prompt: 'hi', presence_penalty: 2.5 }, false, /'presence_penalty' must be between -2 and 2/);
    bad({ model: 'm', prompt: 'hi', frequency_penalty: 'x' }, false, /'frequency_penalty' must be a number/);
    bad({ model: 'm', prompt: 'hi', logit_bias: { a: 1 } }, false, /'logit_bias' keys must be token ids/);
    bad({ model: 'm', prompt: 'hi', logit_bias: { 3: 101 } }, false, /'logit_bias' biases must be numbers between -100 and 100, got 101 for token 3/);
    bad({ model: 'm', prompt: 'hi', logit_bias: [1] }, false, /'logit_bias' must be an object/);
    const chat = { model: 'm', messages: [{ role: 'user', content: 'a' }] };
    bad({ ...chat, logprobs: 3 }, true, /'logprobs' must be a boolean/);
    bad({ ...chat, top_logprobs: 3 }, true, /'top_logprobs' needs logprobs: true/);
    bad({ ...chat, logprobs: true, top_logprobs: 21 }, true, /'top_logprobs' must be at most 20/);
    bad({ ...chat, echo: true }, true, /'echo' is not supported/);
    bad({ model: 'm', prompt: 'hi', frobnicate: 1 }, false, /unknown field 'frobnicate'/);
    bad({ prompt: 'hi' }, false, /'model' must be a string/);
    bad({ model: 'm', messages: [{ role: 'user' }] }, true, /'messages\[0\]\.content' must be a string/);
  });
});
