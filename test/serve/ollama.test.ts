/**
 * Ollama's API on `serve`'s port, called by the `ollama` npm client: the model listed and shown, the
 * version; /api/generate and /api/chat streamed (NDJSON) and not, their text what generate() alone
 * gives, their counts and `context`; options honoured (num_predict, temperature, seed, stop) or
 * refused by name; `format` (a schema, or "json") constrains the reply; an unknown model is a 404
 * in Ollama's error shape.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ollama } from 'ollama';
import { chatPrompt } from '../../src/serve/served_model.js';
import { type ModelServer, startModelServer } from '../../src/serve/server.js';
import { greedyAlone, letters, tinyServed } from './fixtures.js';
import { randomModel } from '../generate/families.js';
import { jsonTokenizer } from '../generate/json_fixtures.js';

const served = tinyServed();
let server: ModelServer;
let client: Ollama;

describe('serve: Ollama\'s API, through the ollama client', { timeout: 60_000 }, () => {
  before(async () => {
    server = await startModelServer(served, { port: 0, maxBatch: 4 });
    client = new Ollama({ host: server.url });
  });
  after(() => server.close());

  it('lists, shows and versions the model', async () => {
    const { models } = await client.list();
    assert.deepEqual(models.map((m) => [m.name, m.model]), [['tiny:latest', 'tiny:latest']]);
    assert.equal(models[0].size, served.model.parameters().reduce((n, p) => n + p.size, 0) * 4);
    const shown = await client.show({ model: 'tiny' });
    assert.equal((shown.model_info as unknown as Record<string, number>)['general.context_length'], served.context);
    assert.deepEqual(shown.capabilities, ['completion']);
    assert.match((await client.version()).version, /^\d+\.\d+\.\d+/);
    assert.equal((await client.ps()).models[0].name, 'tiny:latest');
  });

  it('/api/generate, greedy: the text generate() alone gives, the counts, and a context that continues it', async () => {
    const r = await client.generate({ model: 'tiny:latest', prompt: 'abc', stream: false, options: { temperature: 0, num_predict: 6 } });
    assert.equal(r.response, await greedyAlone(served, 'abc', 6));
    assert.deepEqual([r.done, r.done_reason, r.prompt_eval_count, r.eval_count], [true, 'length', 3, 6]);
    assert.ok(r.total_duration >= r.eval_duration && r.eval_duration > 0);
    assert.deepEqual(r.context.slice(0, 3), letters.encode('abc'));
    assert.equal(r.context.length, 9);
    // Streamed: the pieces add up to the same text; the last line is done with the counts.
    let text = '';
    let last: { done: boolean; eval_count: number } | null = null;
    for await (const part of await client.generate({ model: 'tiny', prompt: 'abc', stream: true, options: { temperature: 0, num_predict: 6 } })) {
      text += part.response;
      last = part;
    }
    assert.equal(text, r.response);
    assert.deepEqual([last!.done, last!.eval_count], [true, 6]);
    // The context continues the reply: 3 more tokens are the next 3 of one greedy run of 9.
    const more = await client.generate({ model: 'tiny', prompt: '', context: r.context, stream: false, options: { temperature: 0, num_predict: 3 } });
    assert.equal(more.response, (await greedyAlone(served, 'abc', 9)).slice(6));
  });

  it('/api/chat: the chat prompt greedy as generate() gives it; seeded sampling repeats; stop cuts the reply', async () => {
    const messages = [{ role: 'user', content: 'hi' }];
    const r = await client.chat({ model: 'tiny', messages, stream: false, options: { temperature: 0, num_predict: 5 } });
    assert.equal(r.message.role, 'assistant');
    assert.equal(r.message.content, await greedyAlone(served, chatPrompt(served, messages), 5));
    let streamed = '';
    for await (const part of await client.chat({ model: 'tiny', messages, stream: true, options: { temperature: 0, num_predict: 5 } })) streamed += part.message.content;
    assert.equal(streamed, r.message.content);
    const seeded = async (): Promise<string> => (await client.chat({ model: 'tiny', messages, stream: false, options: { temperature: 1, seed: 7, num_predict: 8 } })).message.content;
    assert.equal(await seeded(), await seeded());
    const full = (await client.chat({ model: 'tiny', messages, stream: false, options: { temperature: 0, num_predict: 12 } })).message.content;
    const stop = full.slice(3, 5);
    const cut = await client.chat({ model: 'tiny', messages, stream: false, options: { temperature: 0, num_predict: 12, stop: [stop] } });
    assert.equal(cut.message.content, full.slice(0, full.indexOf(stop)));
    assert.equal(cut.done_reason, 'stop');
  });

  it('refuses what it does not honour, and an unknown model, in Ollama\'s error shape', async () => {
    const refused = async (call: Promise<unknown>, status: number, message: RegExp): Promise<void> => {
      const e = await call.then(() => null, (err: { status_code?: number; error?: string; message: string }) => err);
      assert.ok(e, 'refused');
      assert.equal(e.status_code, status);
      assert.match(e.error ?? e.message, message);
    };
    await refused(client.chat({ model: 'llama3', messages: [{ role: 'user', content: 'x' }], stream: false }), 404, /model 'llama3' not found \(this server serves 'tiny:latest'\)/);
    await refused(client.generate({ model: 'tiny', prompt: 'x', stream: false, options: { mirostat: 2 } }), 400, /options\.mirostat: is not an option this server honours/);
    await refused(client.generate({ model: 'tiny', prompt: 'x', stream: false, format: 'yaml' }), 400, /format: must be "json" or a JSON schema object/);
    await refused(client.generate({ model: 'tiny', prompt: 'x', stream: false, tools: [{ type: 'function', function: { name: 'f' } }] } as never), 400, /tools: tool calls are not served yet/);
    await refused(client.generate({ model: 'tiny', prompt: 'x', stream: false, options: { num_ctx: 4096 } }), 400, /options\.num_ctx: 4096 is more than this model's context, 64/);
    const raw = await fetch(`${server.url}/api/nothing`);
    assert.equal(raw.status, 404);
    assert.match(((await raw.json()) as { error: string }).error, /no route GET \/api\/nothing/);
    // Still answering.
    assert.equal((await client.generate({ model: 'tiny', prompt: 'ab', stream: false, options: { temperature: 0, num_predict: 2 } })).eval_count, 2);
  });

  it('format: a JSON schema (or "json") constrains the reply, which parses and fits, streamed or not', async () => {
    const json = await startModelServer({ id: 'json', model: randomModel({ type: 'gpt2', vocabSize: 128, context: 320, layers: 2, width: 32, heads: 4, dropout: 0 }, 3), tokenizer: jsonTokenizer, eosIds: [127], context: 320, chatTemplate: null }, { port: 0 });
    try {
      const ollama = new Ollama({ host: json.url });
      const schema = { type: 'object', properties: { ok: { type: 'boolean' }, color: { enum: ['red', 'green'] } }, required: ['ok', 'color'], additionalProperties: false };
      for (const seed of [1, 2, 3]) {
        const r = await ollama.chat({ model: 'json', messages: [{ role: 'user', content: 'go' }], stream: false, format: schema, options: { seed, temperature: 1, num_predict: 200 } });
        const value = JSON.parse(r.message.content) as { ok: unknown; color: unknown };
        assert.deepEqual(Object.keys(value).sort(), ['color', 'ok']);
        assert.equal(typeof value.ok, 'boolean');
        assert.ok(value.color === 'red' || value.color === 'green', r.message.content);
      }
      let streamed = '';
      for await (const part of await ollama.generate({ model: 'json', prompt: 'x', stream: true, format: 'json', options: { seed: 4, temperature: 1, num_predict: 200 } })) streamed += part.response;
      assert.doesNotThrow(() => JSON.parse(streamed), streamed);
    } finally {
      await json.close();
    }
  });

  it('an empty prompt or no messages loads the model, as Ollama answers it', async () => {
    const r = await client.generate({ model: 'tiny', prompt: '', stream: false });
    assert.deepEqual([r.done, r.done_reason, r.response], [true, 'load', '']);
  });
});
