/**
 * `smolcluster serve`'s HTTP server: the OpenAI-compatible API (GET /v1/models, POST
 * /v1/completions and /v1/chat/completions, streamed as server-sent events ending in
 * `data: [DONE]`), Ollama's API under /api/ (ollama/ollama_api.ts), the chat page at /, and /health. Requests are decoded together by the
 * scheduler (continuous batching). Every failure of a request is an OpenAI error object with a 4xx
 * or 5xx status, never a crash. Security: a bearer token is required when one is set, and is
 * mandatory to bind beyond loopback; without one, requests must name a loopback Host (no DNS
 * rebinding from a web page).
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { isLoopbackHost } from '../dashboard/exposure.js';
import type { SequenceOptions } from '../generate/sequence.js';
import type { Precision } from '../tensor/precision.js';
import { ApiError, badField } from './api_error.js';
import { CompletionChoices } from './completion_choices.js';
import { ollamaRoute } from './ollama/ollama_api.js';
import { type CompletionRequest, parseCompletionRequest } from './request.js';
import * as out from './responses.js';
import { BatchScheduler } from './scheduler.js';
import { toolGrammar, toolSyntax } from './tool_calls.js';
import type { JsonGrammar } from '../generate/token_mask.js';
import { type Served, adapterFor, chatPrompt, replyEnds, servedIds, tokenVocabulary } from './served_model.js';

export interface ServeOptions {
  host?: string;
  /** 0: any free port. */
  port?: number;
  maxBatch?: number;
  /** Required for a host beyond loopback. */
  token?: string;
  precision?: Precision;
  /** How long a request may wait for a batch row (ms, default 60 s). */
  queueTimeoutMs?: number;
  /** How long a client may take to send its request (ms, default 30 s). */
  requestTimeoutMs?: number;
}

export interface ModelServer {
  url: string;
  port: number;
  /** The scheduler of the model served now (tests read its active and queued counts). */
  readonly scheduler: BatchScheduler;
  /** Serves `model` from now on (`--follow`): requests already decoding finish on the old one. */
  swap(model: Served): void;
  close(): Promise<void>;
}

const CHAT_PAGE = fileURLToPath(new URL('../../../src/dashboard/static/chat.html', import.meta.url));
const MAX_BODY_BYTES = 4 << 20;

/** The token check that takes the same time whatever the guess. */
function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, e: unknown): void {
  const err = e instanceof ApiError ? e : new ApiError(500, `the server failed: ${(e as Error)?.message ?? String(e)}`, 'server_error');
  if (!res.headersSent) return sendJson(res, err.status, err.body());
  // Mid-stream: the error as one more event, then the end.
  if (!res.writableEnded) res.end(`data: ${JSON.stringify(err.body())}\n\ndata: [DONE]\n\n`);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `the request body exceeds ${MAX_BODY_BYTES >> 20} MiB`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
  }
}

/** A prompt's token ids, checked against the vocabulary and the context. */
function promptIds(served: Served, p: CompletionRequest['prompts'][number], chat: boolean, tools: CompletionRequest['tools'] = []): number[] {
  const ids = chat ? Array.from(served.tokenizer.encode(chatPrompt(served, p as never, tools))) : typeof p === 'string' ? Array.from(served.tokenizer.encode(p)) : (p as number[]);
  const bad = ids.find((id) => id >= served.tokenizer.vocabSize);
  if (bad !== undefined) throw new ApiError(400, `'prompt' holds token id ${bad}, beyond the vocabulary (${served.tokenizer.vocabSize})`, 'invalid_request_error', 'prompt', 'invalid_value');
  if (ids.length === 0) throw new ApiError(400, 'the prompt encodes to no tokens', 'invalid_request_error', chat ? 'messages' : 'prompt', 'invalid_value');
  if (ids.length >= served.context) {
    throw new ApiError(400, `the prompt is ${ids.length} tokens, but this model's context is ${served.context} (prompt and reply together)`, 'invalid_request_error', chat ? 'messages' : 'prompt', 'context_length_exceeded');
  }
  return ids;
}

/** What a pipeline of stages does not serve (its last stage samples and sends only the tokens back), refused by name. */
function refusePipelined(served: Served, r: CompletionRequest): void {
  if (!('rows' in served)) return;
  const asked = r.logprobs !== null ? 'logprobs' : r.n > 1 ? 'n' : r.grammar ? 'response_format' : r.toolChoice !== 'none' ? 'tools' : null;
  if (asked) throw new ApiError(400, `'${asked}' is not served with --stages (the last stage sends back only the tokens)`, 'invalid_request_error', asked, 'unsupported_parameter');
}

/**
 * Each choice's sequence options for a prompt of `ids`: the request's sampling (greedy where the
 * temperature or top_p is 0), its logprobs, the reply's ends, and its own seed stream (seed + i: a
 * seeded request repeats exactly, choice by choice).
 */
function choiceOptions(r: CompletionRequest, shared: Pick<SequenceOptions, 'eosIds' | 'stopStrings' | 'decode' | 'adapter' | 'constraint'>, context: number): (ids: readonly number[]) => SequenceOptions[] {
  const greedy = r.temperature === 0 || r.topP === 0;
  const seed = r.seed ?? Math.floor(Math.random() * 2 ** 31);
  const scored = r.logprobs !== null;
  const options: SequenceOptions = {
    ...shared, temperature: greedy ? 0 : r.temperature, topP: greedy ? 1 : r.topP,
    topK: r.topK, minP: r.minP, repetitionPenalty: r.repetitionPenalty, minNewTokens: r.minTokens,
    presencePenalty: r.presencePenalty, frequencyPenalty: r.frequencyPenalty, logitBias: r.logitBias,
    ...(scored ? { logprobs: r.logprobs! } : {}), ...(scored && r.echo ? { promptLogprobs: r.logprobs! } : {}),
  };
  return (ids) => Array.from({ length: r.n }, (_, i) => ({ ...options, maxNewTokens: Math.min(r.maxTokens ?? Infinity, context - ids.length), seed: (seed + i) % 2 ** 32 }));
}

/** The grammar a request decodes under: its tools' (a call, or from where the model opens one under auto), its response_format's, or none. */
function decodingGrammar(served: Served, r: CompletionRequest): JsonGrammar | null {
  if (r.toolChoice === 'none') return r.grammar;
  if (r.grammar) throw badField('response_format', 'cannot be combined with tools unless tool_choice is "none"');
  return toolGrammar(r.tools, r.toolChoice, toolSyntax(served.chatTemplate?.source ?? null));
}

interface Backend {
  served: Served;
  scheduler: BatchScheduler;
}

/** Starts the server; resolves once it listens. */
export async function startModelServer(model: Served, o: ServeOptions = {}): Promise<ModelServer> {
  const host = o.host ?? '127.0.0.1';
  if (!isLoopbackHost(host) && !o.token) {
    throw new Error(`serve: --host ${host} is reachable from other machines: give --token (clients send it as "Authorization: Bearer <token>")`);
  }
  const schedulerFor = (m: Served): BatchScheduler => new BatchScheduler('rows' in m ? m.rows : m.model, { maxBatch: o.maxBatch ?? 8, queueTimeoutMs: o.queueTimeoutMs ?? 60_000, precision: o.precision });
  let backend: Backend = { served: model, scheduler: schedulerFor(model) };
  const allowedHosts = new Set(['127.0.0.1', 'localhost', '[::1]', host.includes(':') ? `[${host}]` : host]);

  const authorize = (req: IncomingMessage): void => {
    if (o.token) {
      const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!given || !sameToken(given, o.token)) throw new ApiError(401, 'a valid API key is required: "Authorization: Bearer <token>" (serve --token)', 'authentication_error', null, 'invalid_api_key');
      return;
    }
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!allowedHosts.has(hostHeader)) throw new ApiError(403, `requests must name this server's host, not '${hostHeader}'`, 'invalid_request_error', null, 'forbidden_host');
  };

  const complete = async (req: IncomingMessage, res: ServerResponse, chat: boolean): Promise<void> => {
    const r = parseCompletionRequest(await readJson(req), chat);
    const { served, scheduler } = backend;
    const adapter = adapterFor(served, r.model);
    if (adapter === null) throw new ApiError(404, `the model '${r.model}' does not exist: this server serves ${servedIds(served).map((m) => `'${m}'`).join(', ')} (GET /v1/models)`, 'not_found_error', 'model', 'model_not_found');
    const prompts = r.prompts.map((p) => promptIds(served, p, chat, r.tools));
    refusePipelined(served, r);
    if (r.n > scheduler.maxBatch) throw badField('n', `must be at most this server's --max-batch (${scheduler.maxBatch}): a request's choices decode together, got ${r.n}`);
    const bias = r.logitBias.find(([id]) => id >= served.tokenizer.vocabSize);
    if (bias) throw badField('logit_bias', `holds token id ${bias[0]}, beyond the vocabulary (${served.tokenizer.vocabSize})`);
    const decode = (x: number[]): string => served.tokenizer.decode(x);
    const envelope: out.Envelope = { id: `${chat ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: r.model };
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const ends = r.ignoreEos ? { eosIds: [], stopStrings: [] } : replyEnds(served, chat);
    const stopStrings = [...r.stop, ...ends.stopStrings];
    const grammar = decodingGrammar(served, r);
    const tools = r.toolChoice !== 'none' ? toolSyntax(served.chatTemplate?.source ?? null) : null;
    const constraint = grammar ? { constraint: { grammar, vocab: tokenVocabulary(served) } } : {};
    const choicesOf = choiceOptions(r, { eosIds: ends.eosIds, stopStrings, decode, ...(adapter !== undefined ? { adapter } : {}), ...constraint }, served.context);
    const echoes = r.echo ? prompts.flatMap((ids, p) => Array<{ text: string; ids: number[] }>(r.n).fill({ text: typeof r.prompts[p] === 'string' ? r.prompts[p] as string : decode(ids), ids })) : null;
    const send = (chunk: object): void => void res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    const reply = new CompletionChoices({ chat, envelope, n: prompts.length * r.n, decode, eos: new Set(ends.eosIds), stopStrings, logprobs: r.logprobs !== null, echoes, tools }, send);
    if (r.stream) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const jobs = prompts.map((ids, p) => scheduler.submitChoices({
      promptIds: ids, choices: choicesOf(ids), signal: gone.signal,
      onToken: r.stream ? (id, sequence, choice) => reply.token(p * r.n + choice, id, sequence) : undefined,
    }));
    // One prompt's failure fails the request: its other prompts' rows are freed (as if the client had gone).
    const results = (await Promise.all(jobs).catch((e: unknown) => {
      gone.abort();
      throw e;
    })).flat();
    if (gone.signal.aborted) return;
    const used = out.usage(prompts.reduce((sum, ids) => sum + ids.length, 0), results.reduce((sum, x) => sum + x.ids.length, 0));
    if (!r.stream) return sendJson(res, 200, chat ? out.chatCompletion(envelope, reply.whole(results), used) : out.completion(envelope, reply.whole(results), used));
    reply.end(results);
    if (r.includeUsage) send(out.usageChunk(envelope, chat, used));
    res.end('data: [DONE]\n\n');
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && (path === '/' || path === '/chat')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(readFileSync(CHAT_PAGE));
    }
    if (req.method === 'GET' && path === '/health') {
      const lost = 'rows' in backend.served ? backend.served.rows.lost : null;
      return lost ? sendJson(res, 503, { status: 'error', model: backend.served.id, error: lost.message }) : sendJson(res, 200, { status: 'ok', model: backend.served.id });
    }
    authorize(req);
    if (path.startsWith('/api/')) return ollamaRoute(req, res, path, () => backend, () => readJson(req));
    // An adapter names its base as its parent (vLLM's listing of LoRA modules).
    const entries = servedIds(backend.served).map((id) => ({ id, object: 'model', created: 0, owned_by: 'smolcluster', ...(id === backend.served.id ? {} : { parent: backend.served.id }) }));
    if (req.method === 'GET' && path === '/v1/models') return sendJson(res, 200, { object: 'list', data: entries });
    if (req.method === 'GET' && path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      const entry = entries.find((e) => e.id === id);
      if (!entry) throw new ApiError(404, `the model '${id}' does not exist`, 'not_found_error', 'model', 'model_not_found');
      return sendJson(res, 200, entry);
    }
    if (req.method === 'POST' && path === '/v1/completions') return complete(req, res, false);
    if (req.method === 'POST' && path === '/v1/chat/completions') return complete(req, res, true);
    throw new ApiError(404, `no route ${req.method} ${path} (this server has GET /v1/models, POST /v1/completions and /v1/chat/completions)`, 'not_found_error', null, 'unknown_url');
  };

  const server: Server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => sendError(res, e));
  });
  server.requestTimeout = o.requestTimeoutMs ?? 30_000;
  server.headersTimeout = Math.min(server.requestTimeout, 20_000);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new Error(`serve: port ${o.port} on ${host} is in use (--port)`) : e));
    server.listen(o.port ?? 8000, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    get scheduler() {
      return backend.scheduler;
    },
    swap(next: Served) {
      backend = { served: next, scheduler: schedulerFor(next) };
    },
    close: () => new Promise<void>((resolve) => {
      backend.scheduler.close();
      server.close(() => resolve());
      server.closeIdleConnections();
      // Streams still open get 5 s to end, then are cut: closing never waits forever.
      setTimeout(() => server.closeAllConnections(), 5000).unref();
    }),
  };
}
