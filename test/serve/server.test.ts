/**
 * The OpenAI-compatible server in-process, called by the official `openai` client (streaming and
 * not), by raw fetch for what a client library hides (bad requests, a client that disconnects),
 * and by a spawned curl: replies equal generate() alone, concurrent requests share forwards
 * (continuous batching) without changing anyone's tokens, and every bad request is an OpenAI error
 * object with a 4xx, after which the server still answers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { chatPrompt } from '../../src/serve/served_model.js';
import { type ModelServer, startModelServer } from '../../src/serve/server.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { generate } from '../../src/generate/generate.js';
import { CONTEXT, greedyAlone, letters, tinyServed } from './fixtures.js';

const served = tinyServed();
/** The batch size of every forward the model runs. */
const batchSizes: number[] = [];
/** The [N, T] of every prefill (T > 1). */
const prefills: number[][] = [];
const forward = served.model.forward.bind(served.model);
/** Milliseconds each forward takes at least (a slow model: a disconnect is seen mid-generation). */
let forwardMs = 0;
served.model.forward = ((ids: Tensor, cache?: never) => {
  batchSizes.push(ids.shape[0]);
  if (ids.shape[1] > 1) prefills.push([...ids.shape]);
  for (const end = Date.now() + forwardMs; Date.now() < end;);
  return forward(ids, cache);
}) as typeof served.model.forward;

let server: ModelServer;
let client: OpenAI;

async function post(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: { error?: { message: string; type: string; param: string | null; code: string | null } } }> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, json: await res.json() as never };
}

describe('serve: the OpenAI API', { timeout: 60_000 }, () => {
  before(async () => {
    server = await startModelServer(served, { port: 0, maxBatch: 4 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', timeout: 20_000, maxRetries: 0 });
  });
  after(() => server.close());

  it('lists its model', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['tiny']);
    assert.equal((await client.models.retrieve('tiny')).id, 'tiny');
  });

  it('completes like generate() alone, with usage counts; stop strings cut the text', async () => {
    const r = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 8, temperature: 0 });
    const alone = await greedyAlone(served, 'Hello', 8);
    assert.equal(r.choices[0].text, alone);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 8, total_tokens: 13 });
    const stop = alone.slice(3, 5);
    const cut = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 8, temperature: 0, stop: [stop] });
    assert.equal(cut.choices[0].text, alone.slice(0, alone.indexOf(stop)));
    assert.equal(cut.choices[0].finish_reason, 'stop');
    // An end id stops the reply and is left out of its text (GPT-2's <|endoftext|> never shows).
    const ids = (await generate(served.model, letters.encode('Hello'), { maxNewTokens: 8 })).ids;
    server.swap({ ...served, eosIds: [ids[3]] });
    try {
      const ended = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 8, temperature: 0 });
      const upTo = ids.indexOf(ids[3]);
      assert.deepEqual([ended.choices[0].text, ended.choices[0].finish_reason, ended.usage?.completion_tokens], [letters.decode(ids.slice(0, upTo)), 'stop', upTo + 1]);
      // ignore_eos (vLLM's extension, for benchmarks): the end id no longer stops the reply.
      const all = await post('/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'Hello', max_tokens: 8, temperature: 0, ignore_eos: true })) as never as { json: { choices: { finish_reason: string }[]; usage: { completion_tokens: number } } };
      assert.deepEqual([all.json.choices[0].finish_reason, all.json.usage.completion_tokens], ['length', 8]);
      // min_tokens (vLLM's): the end id cannot end the reply before 6 tokens; top_k, min_p and repetition_penalty are taken.
      const held = await post('/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'Hello', max_tokens: 8, temperature: 0, min_tokens: 6, top_k: 5, min_p: 0.01, repetition_penalty: 1 })) as never as { json: { choices: { finish_reason: string }[]; usage: { completion_tokens: number } } };
      assert.ok(held.json.usage.completion_tokens >= 6, `${held.json.usage.completion_tokens} tokens, min_tokens 6`);
    } finally {
      server.swap(served);
    }
  });

  it('streams chat as SSE chunks (role first, usage last) that add up to the reply', async () => {
    const messages = [{ role: 'user' as const, content: 'hi there' }];
    const full = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6, temperature: 0 });
    assert.equal(full.choices[0].message.content, await greedyAlone(served, chatPrompt(served, messages), 6));
    const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), full.choices[0].message.content);
    assert.equal(chunks.at(-2)!.choices[0].finish_reason, 'length');
    assert.deepEqual(chunks.at(-1)!.usage, full.usage);
  });

  it('n choices from one prefill, each its own seed stream, index and finish reason, streamed too (issue 49)', async () => {
    prefills.length = 0;
    const ids = letters.encode('seeded');
    const r = await client.completions.create({ model: 'tiny', prompt: 'seeded', max_tokens: 10, temperature: 1, seed: 41, n: 3 });
    assert.deepEqual(prefills, [[1, ids.length]], 'the prompt prefilled once for the three choices');
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    for (const c of r.choices) {
      const alone = await generate(served.model, ids, { maxNewTokens: 10, temperature: 1, seed: 41 + c.index });
      assert.equal(c.text, letters.decode(alone.ids), `choice ${c.index}`);
    }
    assert.equal(new Set(r.choices.map((c) => c.text)).size, 3);
    assert.deepEqual(r.usage, { prompt_tokens: ids.length, completion_tokens: 30, total_tokens: ids.length + 30 });
    // Streamed: every chunk names its choice; each choice's text adds up and ends with its own finish chunk.
    const stream = await client.completions.create({ model: 'tiny', prompt: 'seeded', max_tokens: 10, temperature: 1, seed: 41, n: 3, stream: true });
    const texts = ['', '', ''];
    const finishes: (string | null)[] = [null, null, null];
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      texts[c.index] += c.text;
      if (c.finish_reason) finishes[c.index] = c.finish_reason;
    }
    assert.deepEqual(texts, r.choices.map((c) => c.text));
    assert.deepEqual(finishes, ['length', 'length', 'length']);
    // Several prompts (OpenAI's batch) with n: choices numbered prompt by prompt, each as alone.
    const batch = await client.completions.create({ model: 'tiny', prompt: ['ab', 'cdef'], max_tokens: 5, temperature: 1, seed: 2, n: 2 });
    assert.deepEqual(batch.choices.map((c) => c.index), [0, 1, 2, 3]);
    for (const c of batch.choices) {
      const alone = await generate(served.model, letters.encode(['ab', 'cdef'][c.index >> 1]), { maxNewTokens: 5, temperature: 1, seed: 2 + (c.index % 2) });
      assert.equal(c.text, letters.decode(alone.ids), `batch choice ${c.index}`);
    }
    assert.deepEqual(batch.usage, { prompt_tokens: 6, completion_tokens: 20, total_tokens: 26 });
    // A choice's end id stops that choice alone (its finish reason 'stop'), the others go on.
    const chatIds = letters.encode(chatPrompt(served, [{ role: 'user', content: 'pick' }]));
    const ended = (await generate(served.model, chatIds, { maxNewTokens: 8, temperature: 1, seed: 7 })).ids[3];
    server.swap({ ...served, eosIds: [ended] });
    try {
      const chat = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'pick' }], max_tokens: 8, temperature: 1, seed: 7, n: 4 });
      assert.deepEqual(chat.choices.map((c) => c.index), [0, 1, 2, 3]);
      assert.equal(chat.choices[0].finish_reason, 'stop');
      assert.ok(chat.choices.some((c) => c.finish_reason === 'length'), chat.choices.map((c) => c.finish_reason).join());
      for (const c of chat.choices) {
        const alone = await generate(served.model, chatIds, { maxNewTokens: 8, temperature: 1, seed: 7 + c.index, eosIds: [ended] });
        assert.deepEqual([c.message.content, c.finish_reason], [letters.decode(alone.ids.filter((id) => id !== ended)), alone.stopReason === 'eos' ? 'stop' : 'length'], `chat choice ${c.index}`);
      }
    } finally {
      server.swap(served);
    }
  });

  it('the openai client reads logprobs: completions with echo, chat with top_logprobs, streamed (issue 48; values: logprobs.test.ts)', async () => {
    const c = await client.completions.create({ model: 'tiny', prompt: 'Hey', max_tokens: 3, temperature: 0, logprobs: 2, echo: true });
    const l = c.choices[0].logprobs!;
    assert.equal(c.choices[0].text, `Hey${await greedyAlone(served, 'Hey', 3)}`);
    assert.deepEqual([l.tokens!.length, l.token_logprobs![0], l.top_logprobs![0], l.text_offset], [6, null, null, [0, 1, 2, 3, 4, 5]]);
    assert.ok(l.token_logprobs!.slice(1).every((x) => x! < 0));
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const chat = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = chat.choices[0].logprobs!.content!;
    assert.equal(content.map((e) => e.token).join(''), chat.choices[0].message.content);
    assert.ok(content.every((e) => e.top_logprobs.length === 2 && e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob && e.logprob === e.top_logprobs[0].logprob));
    const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2, stream: true });
    const streamed = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    assert.deepEqual(streamed, content);
  });

  it('presence and frequency penalties and logit_bias reach the sampler (issue 49)', async () => {
    const ids = letters.encode('Hello');
    const opts = { maxNewTokens: 12, presencePenalty: 1.5, frequencyPenalty: 0.7 };
    const penalised = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 12, temperature: 0, presence_penalty: 1.5, frequency_penalty: 0.7 });
    assert.equal(penalised.choices[0].text, letters.decode((await generate(served.model, ids, opts)).ids));
    assert.notEqual(penalised.choices[0].text, await greedyAlone(served, 'Hello', 12));
    // A -100 bias bans greedy's first token; +100 on one token makes it every token.
    const first = (await generate(served.model, ids, { maxNewTokens: 1 })).ids[0];
    const banned = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 6, temperature: 0, logit_bias: { [first]: -100 } });
    assert.equal(banned.choices[0].text, letters.decode((await generate(served.model, ids, { maxNewTokens: 6, logitBias: [[first, -100]] })).ids));
    assert.ok(!banned.choices[0].text.includes(letters.decode([first])));
    const forced = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 6, temperature: 1, seed: 3, logit_bias: { 30: 100 } });
    assert.equal(forced.choices[0].text, letters.decode([30, 30, 30, 30, 30, 30]));
  });

  it('decodes concurrent requests together (continuous batching), each as if alone, at most --max-batch at once', async () => {
    const prompts = ['a', 'bcdefg', 'hij', 'klmnopqrst', 'uv', 'wxyz'];
    batchSizes.length = 0;
    const replies = await Promise.all(prompts.map((prompt, i) => (i % 2
      ? client.completions.create({ model: 'tiny', prompt, max_tokens: 12, temperature: 0 }).then((r) => r.choices[0].text)
      : client.completions.create({ model: 'tiny', prompt, max_tokens: 12, temperature: 0, stream: true }).then(async (s) => {
        let text = '';
        for await (const c of s) text += c.choices[0]?.text ?? '';
        return text;
      }))));
    for (const [i, prompt] of prompts.entries()) assert.equal(replies[i], await greedyAlone(served, prompt, 12), prompt);
    assert.ok(Math.max(...batchSizes) > 1, `forwards shared: ${batchSizes.join(' ')}`);
    assert.ok(Math.max(...batchSizes) <= 4, `--max-batch 4: ${batchSizes.join(' ')}`);
    assert.equal(server.scheduler.active, 0);
  });

  it('a client that disconnects frees its row; the others go on', async () => {
    forwardMs = 10;
    try {
      const gone = new AbortController();
      const res = await fetch(`${server.url}/v1/completions`, {
        method: 'POST', signal: gone.signal, headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 60, temperature: 0, stream: true }),
      });
      await res.body!.getReader().read();
      gone.abort();
      batchSizes.length = 0;
      const other = await client.completions.create({ model: 'tiny', prompt: 'other', max_tokens: 20, temperature: 0 });
      const forwards = [...batchSizes];
      assert.equal(server.scheduler.active, 0);
      // Had the dropped stream gone on to its 60 tokens, it would have run ~40 more forwards.
      assert.ok(forwards.length <= 25, `forwards after the disconnect: ${forwards.join(' ')}`);
      assert.equal(other.choices[0].text, await greedyAlone(served, 'other', 20));
    } finally {
      forwardMs = 0;
    }
  });

  it('answers bad requests with OpenAI error objects (4xx) and keeps serving', async () => {
    const ok = JSON.stringify({ model: 'tiny', prompt: 'hi' });
    const cases: [string, string, number, string | null, string | null][] = [
      ['/v1/completions', '{"model": "tiny", prompt', 400, null, 'invalid_json'],
      ['/v1/completions', JSON.stringify({ model: 'gpt-9', prompt: 'hi' }), 404, 'model', 'model_not_found'],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'hi', temperature: 'hot' }), 400, 'temperature', 'invalid_value'],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'hi', max_tokens: -1 }), 400, 'max_tokens', 'invalid_value'],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'x'.repeat(CONTEXT) }), 400, 'prompt', 'context_length_exceeded'],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'hi', best_of: 2 }), 400, 'best_of', 'unsupported_parameter'],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'hi', n: 5 }), 400, 'n', 'invalid_value'],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'hi', logit_bias: { 128: 1 } }), 400, 'logit_bias', 'invalid_value'],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'hi', logprobs: 21 }), 400, 'logprobs', 'invalid_value'],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: [1, 999] }), 400, 'prompt', 'invalid_value'],
      ['/v1/completions', '[1, 2]', 400, null, null],
      ['/v1/chat/completions', JSON.stringify({ model: 'tiny', messages: 'hi' }), 400, 'messages', 'invalid_value'],
      ['/v1/chat/completions', JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 3 }] }), 400, 'messages[0].content', 'invalid_value'],
      ['/v1/embeddings', ok, 404, null, 'unknown_url'],
    ];
    for (const [path, body, status, param, code] of cases) {
      const r = await post(path, body);
      assert.equal(r.status, status, `${path} ${body}: ${JSON.stringify(r.json)}`);
      assert.equal(typeof r.json.error?.message, 'string');
      assert.deepEqual([r.json.error!.param, r.json.error!.code], [param, code], body);
    }
    await assert.rejects(client.completions.create({ model: 'gpt-9', prompt: 'hi' }), (e: InstanceType<typeof OpenAI.NotFoundError>) => e.status === 404 && /serves 'tiny'/.test(e.message));
    assert.equal((await post('/v1/completions', ok)).status, 200);
  });

  it('a pipeline of stages refuses logprobs and n by name (its last stage sends back only the tokens)', async () => {
    const rows = { size: 0, join: () => Promise.reject(new Error('unused')), joinAll: () => Promise.reject(new Error('unused')), step: () => Promise.resolve([]), leave: () => {} };
    const piped = await startModelServer({ id: 'piped', rows, tokenizer: letters, eosIds: [], context: CONTEXT, chatTemplate: null }, { port: 0 });
    try {
      for (const [extra, param] of [[{ logprobs: 1 }, 'logprobs'], [{ n: 2 }, 'n']] as const) {
        const res = await fetch(`${piped.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'piped', prompt: 'hi', ...extra }), signal: AbortSignal.timeout(5000) });
        const body = await res.json() as { error: { param: string; code: string; message: string } };
        assert.deepEqual([res.status, body.error.param, body.error.code], [400, param, 'unsupported_parameter'], body.error.message);
        assert.match(body.error.message, /not served with --stages/);
      }
    } finally {
      await piped.close();
    }
  });

  it('streams to curl as data: lines ending in data: [DONE]', async () => {
    const body = JSON.stringify({ model: 'tiny', prompt: 'curl', max_tokens: 5, temperature: 0, stream: true });
    const curl = spawn('curl', ['-sN', '--max-time', '20', '-H', 'content-type: application/json', '-d', body, `${server.url}/v1/completions`]);
    let out = '';
    curl.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => curl.on('close', resolve));
    assert.equal(code, 0);
    const events = out.split('\n\n').filter((e) => e.length > 0);
    assert.equal(events.at(-1), 'data: [DONE]');
    const texts = events.slice(0, -1).map((e) => (JSON.parse(e.slice('data: '.length)) as { choices: { text: string }[] }).choices[0].text);
    assert.equal(texts.join(''), await greedyAlone(served, 'curl', 5));
  });
});

describe('serve: who may call it', { timeout: 30_000 }, () => {
  it('with --token requires it as a bearer token; refuses to bind beyond loopback without one', async () => {
    const guarded = await startModelServer(tinyServed(), { port: 0, token: 'sekret' });
    try {
      const bare = await fetch(`${guarded.url}/v1/models`, { signal: AbortSignal.timeout(5000) });
      assert.equal(bare.status, 401);
      assert.equal(((await bare.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
      const wrong = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: 'guess', maxRetries: 0, timeout: 5000 });
      await assert.rejects(wrong.models.list(), (e: { status?: number }) => e.status === 401);
      const right = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: 'sekret', maxRetries: 0, timeout: 5000 });
      assert.deepEqual((await right.models.list()).data.map((m) => m.id), ['tiny']);
    } finally {
      await guarded.close();
    }
    await assert.rejects(startModelServer(tinyServed(), { host: '0.0.0.0', port: 0 }), /--host 0\.0\.0\.0 .*give --token/);
  });

  it('without a token, refuses requests naming another host (DNS rebinding)', async () => {
    const open = await startModelServer(tinyServed(), { port: 0 });
    try {
      const r = await new Promise<number>((resolve, reject) => {
        const req = request(`${open.url}/v1/models`, { headers: { host: 'evil.example' }, timeout: 5000 }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.end();
      });
      assert.equal(r, 403);
    } finally {
      await open.close();
    }
  });
});
