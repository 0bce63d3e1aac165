/**
 * Tool calls: the calls parsed back from Hermes' and Llama 3.1's syntaxes; the grammar of a call
 * (random tokens under its mask always make a call of a listed function whose arguments fit its
 * schema; under auto it applies once the model opens a call); and through the server, with Qwen2.5's
 * chat template and a random-weight model, the openai client's tool-call round trip: required and
 * named calls, streamed and not, then the tool's answer sent back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { chatTemplateFrom } from '../../src/generate/chat_template.js';
import { Sequence } from '../../src/generate/sequence.js';
import { TokenVocabulary } from '../../src/generate/token_mask.js';
import { chatPrompt, type ServedModel } from '../../src/serve/served_model.js';
import { type ModelServer, startModelServer } from '../../src/serve/server.js';
import { type ToolCallDelta, ToolCallStream } from '../../src/serve/tool_call_stream.js';
import { type ToolFunction, parseToolCalls, toolGrammar, toolSyntax } from '../../src/serve/tool_calls.js';
import { Rng } from '../../src/util/rng.js';
import { QWEN25_TEMPLATE } from '../generate/chat_template_fixtures.js';
import { randomModel } from '../generate/families.js';
import { JSON_TEXTS, jsonTokenizer, misfit } from '../generate/json_fixtures.js';

const EOS = 127;
const vocab = new TokenVocabulary(128, jsonTokenizer.decode, 128, [EOS]);

const WEATHER = { type: 'object', properties: { city: { enum: ['Lima', 'Oslo'] }, days: { type: 'integer' }, metric: { type: 'boolean' } }, required: ['city', 'days', 'metric'], additionalProperties: false };
const TIME = { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false };
const FUNCTIONS: ToolFunction[] = [
  { name: 'get_weather', description: 'The weather in a city', parameters: WEATHER, strict: true },
  { name: 'get_time', parameters: TIME, strict: true },
];
const SCHEMA_OF: Record<string, Record<string, unknown>> = { get_weather: WEATHER, get_time: TIME };
const OPENAI_TOOLS = FUNCTIONS.map((f) => ({ type: 'function' as const, function: { name: f.name, ...(f.description ? { description: f.description } : {}), parameters: f.parameters, strict: true } }));

/** Checks a call names a listed function and its arguments (JSON text) fit that function's schema. */
function assertFits(call: { function: { name: string; arguments: string } }): void {
  const schema = SCHEMA_OF[call.function.name];
  assert.ok(schema, `unknown function ${call.function.name}`);
  assert.equal(misfit(JSON.parse(call.function.arguments), schema), null, call.function.arguments);
}

describe('tool calls: syntax and grammar', () => {
  it('parses Hermes tags and Llama 3.1 JSON back into calls, leaving other text as content', () => {
    const h = parseToolCalls('Let me look.\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "UTC"}}\n</tool_call>', 'hermes');
    assert.equal(h.content, 'Let me look.');
    assert.deepEqual(h.calls.map((c) => [c.type, c.function.name, c.function.arguments]), [['function', 'get_time', '{"zone":"UTC"}']]);
    assert.match(h.calls[0].id, /^call_[0-9a-f]{24}$/);
    assert.equal(parseToolCalls('<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call><tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>', 'hermes').calls.length, 2);
    assert.deepEqual(parseToolCalls('<tool_call>{"name": oops</tool_call>', 'hermes').calls, []);
    const l = parseToolCalls(' {"name": "get_time", "parameters": {"zone": "CET"}}', 'llama3');
    assert.equal(l.content, null);
    assert.equal(l.calls[0].function.arguments, '{"zone":"CET"}');
    assert.deepEqual(parseToolCalls('The answer is {"name": 1}', 'llama3').calls, []);
    assert.equal(toolSyntax(QWEN25_TEMPLATE), 'hermes');
    assert.equal(toolSyntax('... Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. ...'), 'llama3');
  });

  it('streams Hermes calls as their text grows: a delta naming each, then its arguments piece by piece', () => {
    const text = 'Sure. <tool_call>\n{"name": "get_time", "arguments": {"zone": "U}TC"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lima", "days": [1, {"x": 2}]}}\n</tool_call>';
    const stream = new ToolCallStream();
    const deltas: ToolCallDelta[] = [];
    for (let end = 1; end <= text.length; end++) deltas.push(...stream.update(text.slice(0, end)));
    const headers = deltas.filter((d) => d.id !== undefined);
    assert.deepEqual(headers.map((d) => [d.index, d.type, d.function.name, d.function.arguments]), [[0, 'function', 'get_time', ''], [1, 'function', 'get_weather', '']]);
    const args = (i: number): string => deltas.filter((d) => d.index === i).map((d) => d.function.arguments).join('');
    assert.equal(args(0), '{"zone": "U}TC"}');
    assert.equal(args(1), '{"city": "Lima", "days": [1, {"x": 2}]}');
    assert.ok(deltas.filter((d) => d.index === 1 && d.id === undefined).length > 10, 'the arguments come piece by piece');
    assert.ok(stream.called);
    assert.equal(new ToolCallStream().update('no call here').length, 0);
  });

  for (const syntax of ['hermes', 'llama3'] as const) {
    it(`random tokens under a required call's grammar always make a call that fits (${syntax})`, () => {
      const grammar = toolGrammar(FUNCTIONS, 'required', syntax);
      const rng = new Rng(3);
      const named = new Set<string>();
      for (let trial = 0; trial < 30; trial++) {
        const seq = new Sequence([0], { constraint: { grammar, vocab }, eosIds: [EOS], maxNewTokens: 400, temperature: 1, seed: trial });
        while (!seq.stopped()) seq.choose(Float32Array.from({ length: 128 }, () => rng.normal() * 3));
        assert.equal(seq.stopped(), 'stop');
        const { calls } = parseToolCalls(jsonTokenizer.decode(seq.ids), syntax);
        assert.equal(calls.length, 1, jsonTokenizer.decode(seq.ids));
        assertFits(calls[0]);
        named.add(calls[0].function.name);
      }
      assert.equal(named.size, 2, 'both functions are reachable');
    });
  }

  it('under auto, the reply is free until it opens a call, then constrained to one', () => {
    const seq = new Sequence([0], { constraint: { grammar: toolGrammar(FUNCTIONS, 'auto', 'hermes'), vocab }, eosIds: [EOS], maxNewTokens: 400, temperature: 1 });
    const favour = (text: string): Float32Array => {
      const logits = new Float32Array(128);
      logits[JSON_TEXTS.indexOf(text)] = 50;
      return logits;
    };
    // Free text: the end id may come, and any character.
    for (const c of 'Hi <tool_call>') seq.choose(favour(c));
    assert.equal(jsonTokenizer.decode(seq.ids), 'Hi <tool_call>');
    // Now the call's grammar holds: a favoured 'x' is refused for the newline the syntax needs.
    seq.choose(favour('x'));
    assert.equal(jsonTokenizer.decode(seq.ids).at(-1), '\n');
    const rng = new Rng(1);
    while (!seq.stopped()) seq.choose(Float32Array.from({ length: 128 }, () => rng.normal() * 3));
    const { content, calls } = parseToolCalls(jsonTokenizer.decode(seq.ids), 'hermes');
    assert.equal(content, 'Hi');
    assertFits(calls[0]);
  });
});

const CONTEXT = 2048;
let server: ModelServer;
let client: OpenAI;

describe('serve: tool calls through the openai client', { timeout: 240_000 }, () => {
  const template = chatTemplateFrom(QWEN25_TEMPLATE);
  const served: ServedModel = {
    id: 'tiny', model: randomModel({ type: 'gpt2', vocabSize: 128, context: CONTEXT, layers: 2, width: 32, heads: 4, dropout: 0 }, 11),
    tokenizer: jsonTokenizer, eosIds: [EOS], context: CONTEXT, chatTemplate: template,
  };
  before(async () => {
    server = await startModelServer(served, { port: 0, maxBatch: 4 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', timeout: 120_000, maxRetries: 0 });
  });
  after(() => server.close());

  const ask: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Lima?' }];

  it('required and named calls come back as tool_calls fitting their schemas, finish_reason tool_calls', async () => {
    const [required, named] = await Promise.all([
      client.chat.completions.create({ model: 'tiny', messages: ask, tools: OPENAI_TOOLS, tool_choice: 'required', temperature: 1, seed: 2, max_tokens: 300 }),
      client.chat.completions.create({ model: 'tiny', messages: ask, tools: OPENAI_TOOLS, tool_choice: { type: 'function', function: { name: 'get_time' } }, temperature: 1, seed: 3, max_tokens: 300 }),
    ]);
    for (const r of [required, named]) {
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      assert.equal(r.choices[0].message.content, null);
      assert.equal(r.choices[0].message.tool_calls!.length, 1);
      assertFits(r.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall);
    }
    assert.equal((named.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function.name, 'get_time');
  });

  it('streams a call as OpenAI does: a delta naming it, then its arguments; the client accumulates them', async () => {
    const stream = client.chat.completions.stream({ model: 'tiny', messages: ask, tools: OPENAI_TOOLS, tool_choice: 'required', temperature: 1, seed: 4, max_tokens: 300 });
    let argumentDeltas = 0;
    stream.on('chunk', (chunk) => {
      if (chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments) argumentDeltas++;
    });
    const done = await stream.finalChatCompletion();
    assert.equal(done.choices[0].finish_reason, 'tool_calls');
    assert.ok(argumentDeltas > 1, `the arguments stream in pieces (${argumentDeltas} deltas)`);
    const call = done.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.match(call.id, /^call_/);
    assertFits(call);
  });

  it("takes the call and the tool's answer back (role tool), rendered by the template", async () => {
    const first = await client.chat.completions.create({ model: 'tiny', messages: ask, tools: OPENAI_TOOLS, tool_choice: 'required', temperature: 1, seed: 6, max_tokens: 300 });
    const call = first.choices[0].message.tool_calls![0];
    const messages: OpenAI.ChatCompletionMessageParam[] = [...ask, first.choices[0].message as OpenAI.ChatCompletionMessageParam, { role: 'tool', tool_call_id: call.id, content: '{"sky": "grey"}' }];
    const second = await client.chat.completions.create({ model: 'tiny', messages, tools: OPENAI_TOOLS, tool_choice: 'none', temperature: 0, max_tokens: 5 });
    assert.equal(second.choices[0].finish_reason, 'length');
    // The prompt holds the call (its arguments as JSON) and the answer in Qwen2.5's tags.
    const fn = (call as OpenAI.ChatCompletionMessageFunctionToolCall).function;
    const prompt = chatPrompt(served, [{ role: 'user', content: 'Weather in Lima?' }, { role: 'assistant', content: '', tool_calls: [{ id: call.id, type: 'function', function: { name: fn.name, arguments: JSON.parse(fn.arguments) } }] }, { role: 'tool', content: '{"sky": "grey"}', tool_call_id: call.id }], FUNCTIONS);
    // (the template writes the arguments with tojson's spacing: compared as parsed JSON)
    const written = /<\|im_start\|>assistant\n<tool_call>\n(.*)\n<\/tool_call><\|im_end\|>/.exec(prompt);
    assert.ok(written, prompt);
    assert.deepEqual(JSON.parse(written[1]), { name: fn.name, arguments: JSON.parse(fn.arguments) });
    assert.ok(prompt.includes('<tool_response>\n{"sky": "grey"}\n</tool_response>') && prompt.includes('"name": "get_weather"'), prompt);
  });

  it('refuses bad tools by field: an unknown named function, a bad tool type, tools on /v1/completions', async () => {
    const post = async (path: string, body: object): Promise<{ status: number; param: string | null }> => {
      const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', ...body }) });
      return { status: r.status, param: (await r.json() as { error?: { param: string | null } }).error?.param ?? null };
    };
    assert.deepEqual(await post('/v1/chat/completions', { messages: ask, tools: OPENAI_TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }), { status: 400, param: 'tool_choice' });
    assert.deepEqual(await post('/v1/chat/completions', { messages: ask, tools: [{ type: 'retrieval' }] }), { status: 400, param: 'tools[0].type' });
    assert.deepEqual(await post('/v1/completions', { prompt: 'x', tools: OPENAI_TOOLS }), { status: 400, param: 'tools' });
    assert.deepEqual(await post('/v1/chat/completions', { messages: ask, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string', format: 'email' } }, required: ['a'], additionalProperties: false }, strict: true } }] }), { status: 400, param: 'tools[0].function.parameters' });
    assert.deepEqual(await post('/v1/chat/completions', { messages: [...ask, { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{oops' } }] }] }), { status: 400, param: 'messages[1].tool_calls[0].function.arguments' });
  });
});
