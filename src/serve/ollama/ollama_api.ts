/**
 * Ollama's API beside OpenAI's on `serve`'s port, for the clients that speak it (Open WebUI,
 * Continue, LangChain's Ollama classes, the `ollama` npm package): GET /api/version, /api/tags and
 * /api/ps, POST /api/show, /api/chat and /api/generate — streamed as NDJSON (one JSON object a
 * line, the last with `done: true` and the counts and durations, in nanoseconds, as Ollama's), or
 * one object with `stream: false`. Requests decode in the same batch as the OpenAI ones. Errors are
 * Ollama's `{"error": "..."}` with the HTTP status; mid-stream, a last line holding the error.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GenerateResult, SequenceOptions } from '../../generate/sequence.js';
import { TextStream } from '../../generate/text_stream.js';
import { ApiError } from '../api_error.js';
import type { BatchScheduler } from '../scheduler.js';
import { SchemaError } from '../../generate/json_schema_grammar.js';
import type { JsonGrammar } from '../../generate/token_mask.js';
import { grammarOf } from '../response_format.js';
import { type Served, adapterFor, chatPrompt, replyEnds, servedIds, tokenVocabulary } from '../served_model.js';
import { type OllamaChat, OllamaError, type OllamaGenerate, type OllamaSampling, parseOllamaChat, parseOllamaGenerate } from './ollama_request.js';

export interface OllamaBackend {
  served: Served;
  scheduler: BatchScheduler;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const STARTED = new Date().toISOString();

/** Handles an /api/ request; `backend` is read per request (serve --follow swaps it). */
export async function ollamaRoute(req: IncomingMessage, res: ServerResponse, path: string, backend: () => OllamaBackend, body: () => Promise<unknown>): Promise<void> {
  try {
    const b = backend();
    if (req.method === 'GET' && path === '/api/version') return json(res, 200, { version: VERSION });
    if (req.method === 'GET' && (path === '/api/tags' || path === '/api/ps')) return json(res, 200, { models: servedIds(b.served).map((id) => modelEntry(b.served, id, path === '/api/ps')) });
    if (req.method === 'POST' && path === '/api/show') return json(res, 200, show(b.served, modelId(b.served, (await body() as { model?: unknown })?.model)));
    if (req.method === 'POST' && path === '/api/chat') return await reply(res, b, parseOllamaChat(await body()));
    if (req.method === 'POST' && path === '/api/generate') return await reply(res, b, parseOllamaGenerate(await body()));
    throw new OllamaError(404, `no route ${req.method} ${path} (this server's Ollama API: GET /api/version, /api/tags, /api/ps; POST /api/show, /api/chat, /api/generate)`);
  } catch (e) {
    sendError(res, e);
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

function sendError(res: ServerResponse, e: unknown): void {
  const status = e instanceof OllamaError || e instanceof ApiError ? e.status : 500;
  const message = e instanceof Error ? e.message : String(e);
  if (!res.headersSent) return json(res, status, { error: message });
  if (!res.writableEnded) res.end(`${JSON.stringify({ error: message })}\n`);
}

/** The id a request's model name means: ours as is, or with Ollama's `:latest` tag. */
function modelId(served: Served, name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new OllamaError(400, 'model: is required: a model name from /api/tags');
  const id = servedIds(served).find((m) => name === m || name === `${m}:latest`);
  if (id === undefined) throw new OllamaError(404, `model '${name}' not found (this server serves ${servedIds(served).map((m) => `'${m}:latest'`).join(', ')})`);
  return id;
}

function parameterCount(served: Served): number | null {
  return 'model' in served ? served.model.parameters().reduce((n, p) => n + p.size, 0) : null;
}

function parameterSize(count: number | null): string {
  if (count === null) return '';
  return count >= 1e9 ? `${(count / 1e9).toFixed(1)}B` : `${(count / 1e6).toFixed(1)}M`;
}

/** A model's /api/tags entry; the digest names the model (a hash of its name), not its bytes. */
function modelEntry(served: Served, id: string, running: boolean): Record<string, unknown> {
  const name = `${id}:latest`;
  const count = parameterCount(served);
  return {
    name, model: name, modified_at: STARTED, size: count === null ? 0 : count * 4, digest: createHash('sha256').update(name).digest('hex'), details: details(served, id),
    ...(running ? { expires_at: '2100-01-01T00:00:00Z', size_vram: 0 } : {}),
  };
}

function details(served: Served, id: string): Record<string, unknown> {
  return { parent_model: id === served.id ? '' : `${served.id}:latest`, format: 'smolcluster', family: 'smolcluster', families: ['smolcluster'], parameter_size: parameterSize(parameterCount(served)), quantization_level: '' };
}

function show(served: Served, id: string): Record<string, unknown> {
  const template = served.chatTemplate && 'source' in served.chatTemplate ? String((served.chatTemplate as { source: unknown }).source) : '';
  return {
    license: '', modelfile: `# served by smolcluster\nFROM ${id}\n`, parameters: '', template, system: '', details: details(served, id), messages: [], modified_at: STARTED,
    model_info: { 'general.parameter_count': parameterCount(served), 'general.context_length': served.context }, capabilities: ['completion'],
  };
}

/** The prompt's ids and what ends its reply. */
function promptOf(served: Served, r: OllamaChat | OllamaGenerate): { ids: number[]; ends: { eosIds: number[]; stopStrings: string[] } } {
  if (r.kind === 'chat') return { ids: Array.from(served.tokenizer.encode(chatPrompt(served, r.messages))), ends: replyEnds(served, true) };
  const templated = !r.raw && served.chatTemplate !== null;
  const text = r.raw ? r.prompt : templated
    ? chatPrompt(served, [...(r.system ? [{ role: 'system', content: r.system }] : []), { role: 'user', content: r.prompt }])
    : `${r.system ? `${r.system}\n\n` : ''}${r.prompt}`;
  return { ids: [...(r.context ?? []), ...Array.from(served.tokenizer.encode(text))], ends: replyEnds(served, templated) };
}

/** Nothing to say (no messages, an empty prompt): Ollama answers such a request as a model load. */
function loadOnly(r: OllamaChat | OllamaGenerate): boolean {
  return r.kind === 'chat' ? r.messages.length === 0 : r.prompt === '' && r.context === null;
}

async function reply(res: ServerResponse, b: OllamaBackend, r: OllamaChat | OllamaGenerate): Promise<void> {
  const id = modelId(b.served, r.model);
  const adapter = adapterFor(b.served, id);
  const head = { model: r.model, created_at: new Date().toISOString() };
  if (loadOnly(r)) return json(res, 200, { ...head, ...(r.kind === 'chat' ? { message: { role: 'assistant', content: '' } } : { response: '' }), done: true, done_reason: 'load' });
  const { ids, ends } = promptOf(b.served, r);
  const options = sequenceOptions(b.served, r, ids, ends, adapter ?? undefined);
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  const stream = new TextStream((x) => b.served.tokenizer.decode(x), options.stopStrings ?? []);
  const piece = (text: string): object => ({ ...head, ...(r.kind === 'chat' ? { message: { role: 'assistant', content: text } } : { response: text }), done: false });
  const started = process.hrtime.bigint();
  let first: bigint | null = null;
  if (r.stream) res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  const [result] = await b.scheduler.submitChoices({
    promptIds: ids, choices: [options], signal: gone.signal,
    onToken: (token) => {
      first ??= process.hrtime.bigint();
      const text = stream.push(token);
      if (r.stream && text !== '') res.write(`${JSON.stringify(piece(text))}\n`);
    },
  });
  if (gone.signal.aborted) return;
  const ended = process.hrtime.bigint();
  const tail = stream.finish();
  const stats = finalStats(result, ids.length, started, first ?? ended, ended);
  const final = r.kind === 'chat'
    ? { ...head, message: { role: 'assistant', content: r.stream ? tail : stream.text() }, ...stats }
    : { ...head, response: r.stream ? tail : stream.text(), ...stats, context: [...ids, ...result.ids] };
  if (!r.stream) return json(res, 200, final);
  res.end(`${JSON.stringify(final)}\n`);
}

/** The request's sequence: its sampling, the reply's ends, at most num_predict tokens within num_ctx (or the model's context). */
function sequenceOptions(served: Served, r: OllamaChat | OllamaGenerate, ids: number[], ends: { eosIds: number[]; stopStrings: string[] }, adapter: string | undefined): SequenceOptions {
  const bad = ids.find((t) => t >= served.tokenizer.vocabSize);
  if (bad !== undefined) throw new OllamaError(400, `context: holds token id ${bad}, beyond the vocabulary (${served.tokenizer.vocabSize})`);
  const s = r.sampling;
  if (s.numCtx !== null && s.numCtx > served.context) throw new OllamaError(400, `options.num_ctx: ${s.numCtx} is more than this model's context, ${served.context}`);
  const room = (s.numCtx ?? served.context) - ids.length;
  if (room <= 0) throw new OllamaError(400, `the prompt is ${ids.length} tokens, but the context is ${s.numCtx ?? served.context} (prompt and reply together)`);
  const grammar = formatGrammar(s.format);
  return {
    ...s.options, eosIds: ends.eosIds, stopStrings: [...(s.options.stopStrings ?? []), ...ends.stopStrings], decode: (x: number[]) => served.tokenizer.decode(x),
    maxNewTokens: Math.min(s.maxNewTokens ?? Infinity, room), seed: s.options.seed ?? Math.floor(Math.random() * 2 ** 31), ...(adapter !== undefined ? { adapter } : {}),
    ...(grammar ? { constraint: { grammar, vocab: tokenVocabulary(served) } } : {}),
  };
}

/** Ollama's `format` as the grammar decoding walks: "json" any JSON value, a schema as OpenAI's non-strict json_schema (what cannot be enforced is not). */
function formatGrammar(format: OllamaSampling['format']): JsonGrammar | null {
  if (format === null) return null;
  try {
    return grammarOf(format === 'json' ? {} : format, false);
  } catch (e) {
    if (e instanceof SchemaError) throw new OllamaError(400, `format: is not supported: ${e.message}`);
    throw e;
  }
}

/** Ollama's closing counts and durations (ns): the prompt's time runs to the first token (queueing included), the reply's from there. */
function finalStats(result: GenerateResult, promptTokens: number, started: bigint, first: bigint, ended: bigint): Record<string, unknown> {
  return {
    done: true, done_reason: result.stopReason === 'length' ? 'length' : 'stop',
    total_duration: Number(ended - started), load_duration: 0, prompt_eval_count: promptTokens, prompt_eval_duration: Number(first - started),
    eval_count: result.ids.length, eval_duration: Number(ended - first),
  };
}
