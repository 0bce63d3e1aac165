/**
 * response_format through the server, with a random-weight model whose tokenizer holds JSON's
 * characters and pieces: under continuous batching, constrained requests (json_schema of several
 * shapes, json_object) decode beside unconstrained ones, and every constrained reply parses and fits
 * its own schema, streamed or not; the openai client's chat.completions.parse with a zod schema gets
 * its object back; a schema we cannot enforce under strict is a 400 naming the keyword.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import type { ServedModel } from '../../src/serve/served_model.js';
import { type ModelServer, startModelServer } from '../../src/serve/server.js';
import { randomModel } from '../generate/families.js';
import { jsonTokenizer, misfit } from '../generate/json_fixtures.js';

const CONTEXT = 320;
const EOS = 127;

function jsonServed(seed: number): ServedModel {
  const model = randomModel({ type: 'gpt2', vocabSize: 128, context: CONTEXT, layers: 2, width: 32, heads: 4, dropout: 0 }, seed);
  return { id: 'tiny', model, tokenizer: jsonTokenizer, eosIds: [EOS], context: CONTEXT, chatTemplate: null };
}

/** Schemas whose every value is bounded (enums, integers, booleans, bounded arrays), so replies end well within the context. */
const SCHEMAS: Record<string, Record<string, unknown>> = {
  flat: { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer' }, color: { enum: ['red', 'green'] } }, required: ['ok', 'n', 'color'], additionalProperties: false },
  nested: {
    type: 'object',
    properties: { owner: { type: 'object', properties: { role: { enum: ['admin', 'user'] }, id: { type: 'integer' } }, required: ['role'], additionalProperties: false }, flags: { type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 3 }, spare: { type: ['null', 'integer'] } },
    required: ['owner', 'flags', 'spare'], additionalProperties: false,
  },
  array: { type: 'array', items: { enum: [1, 2, 'x', null] }, maxItems: 4 },
};

const format = (name: string): object => ({ type: 'json_schema', json_schema: { name, schema: SCHEMAS[name], strict: true } });

let server: ModelServer;
let client: OpenAI;

describe('serve: constrained decoding (response_format)', { timeout: 240_000 }, () => {
  before(async () => {
    server = await startModelServer(jsonServed(3), { port: 0, maxBatch: 4 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', timeout: 120_000, maxRetries: 0 });
  });
  after(() => server.close());

  it('every reply parses and fits its own schema under continuous batching, beside unconstrained requests', async () => {
    const names = Object.keys(SCHEMAS);
    const jobs = Array.from({ length: 9 }, (_, i) => {
      const kind = i % 3 === 2 ? 'free' : names[i % names.length];
      const body = { model: 'tiny', messages: [{ role: 'user', content: `Reply ${i}` }], temperature: 1, seed: i, max_tokens: 200, ...(kind === 'free' ? {} : { response_format: format(kind) }) };
      return client.chat.completions.create(body as never).then((r) => ({ kind, r: r as OpenAI.ChatCompletion }));
    });
    // One json_object request too, streamed.
    const streamed = client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'obj' }], temperature: 1, seed: 42, max_tokens: 200, response_format: { type: 'json_object' }, stream: true });
    const results = await Promise.all(jobs);
    for (const { kind, r } of results) {
      if (kind === 'free') continue;
      const text = r.choices[0].message.content!;
      assert.equal(r.choices[0].finish_reason, 'stop', `${kind}: ${text}`);
      assert.equal(misfit(JSON.parse(text), SCHEMAS[kind]), null, `${kind}: ${text}`);
    }
    let text = '';
    let finish: string | null = null;
    for await (const chunk of await streamed) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    if (finish === 'stop') {
      const value = JSON.parse(text) as unknown;
      assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), text);
    } else assert.equal(finish, 'length');
  });

  it('n choices each keep their own constraint, and /v1/completions takes response_format too', async () => {
    const r = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', prompt: 'go', n: 3, temperature: 1, seed: 9, max_tokens: 200, response_format: format('nested') }) });
    const body = await r.json() as { choices: { text: string; finish_reason: string }[] };
    assert.equal(body.choices.length, 3);
    for (const c of body.choices) {
      assert.equal(c.finish_reason, 'stop', c.text);
      assert.equal(misfit(JSON.parse(c.text), SCHEMAS.nested), null, c.text);
    }
  });

  it("the openai client's chat.completions.parse gets an object of its zod schema", async () => {
    const House = z.object({ city: z.enum(['Oslo', 'Rome']), rooms: z.number().int(), pets: z.boolean(), tags: z.array(z.enum(['a', 'b'])).max(2), owner: z.object({ name: z.enum(['Ann', 'Bo']), age: z.number().int() }), note: z.enum(['x']).nullable() });
    const r = await client.chat.completions.parse({ model: 'tiny', messages: [{ role: 'user', content: 'a house' }], temperature: 1, seed: 5, max_tokens: 250, response_format: zodResponseFormat(House, 'house') });
    assert.equal(r.choices[0].finish_reason, 'stop', r.choices[0].message.content ?? '');
    const house = r.choices[0].message.parsed!;
    assert.deepEqual(House.parse(house), house);
  });

  it('a schema it cannot enforce under strict is a 400 naming the keyword; without strict it is served', async () => {
    const schema = { type: 'object', properties: { a: { type: 'string', pattern: '^x' } }, required: ['a'], additionalProperties: false };
    const ask = (strict: boolean, extra: object = {}): Promise<Response> => fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 20, response_format: { type: 'json_schema', json_schema: { name: 's', schema, strict } }, ...extra }),
    });
    const refused = await ask(true);
    assert.equal(refused.status, 400);
    const err = (await refused.json() as { error: { message: string; param: string } }).error;
    assert.equal(err.param, 'response_format.json_schema.schema');
    assert.match(err.message, /pattern/);
    assert.equal((await ask(false)).status, 200);
    const bad = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } }) });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json() as { error: { param: string } }).error.param, 'response_format.type');
  });
});
