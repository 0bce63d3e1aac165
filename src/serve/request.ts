/**
 * The request bodies of /v1/completions and /v1/chat/completions: the subset of OpenAI's fields we
 * serve, checked field by field (a wrong type or range is a 400 naming the field), and the sampling
 * options they map to (with vLLM's extensions the sampler implements: top_k, min_p,
 * repetition_penalty, min_tokens, ignore_eos). Fields we do not serve (best_of, suffix, ...) are refused by name
 * rather than silently ignored.
 */
import type { JsonGrammar } from '../generate/token_mask.js';
import { ApiError, badField } from './api_error.js';
import { responseGrammar } from './response_format.js';
import { type ToolChoice, type ToolFunction, parseToolChoice, parseTools } from './tool_calls.js';

export interface ChatMessage {
  role: string;
  content: string;
  /** An assistant's calls (their arguments parsed: chat templates write them as JSON objects, as vLLM hands them over). */
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: unknown } }[];
  /** A tool's answer: the call it answers. */
  tool_call_id?: string;
  name?: string;
}

/** What a completion request asks for, in our terms. */
export interface CompletionRequest {
  model: string;
  /**
   * /v1/completions: the prompts, each its text or its token ids (several: OpenAI's batch, as
   * lm-eval sends with batch_size > 1; their choices are numbered prompt by prompt);
   * /v1/chat/completions: one, the messages.
   */
  prompts: (string | number[] | ChatMessage[])[];
  /** Null: as many as the context leaves. */
  maxTokens: number | null;
  temperature: number;
  topP: number;
  seed: number | undefined;
  stop: string[];
  stream: boolean;
  /** stream_options.include_usage: a last chunk with the usage counts. */
  includeUsage: boolean;
  /** ignore_eos (vLLM's and llama.cpp's extension): the model's end ids do not stop the reply (benchmarks). */
  ignoreEos: boolean;
  /** vLLM's sampling extensions our sampler implements: top_k (0 or -1: off), min_p, repetition_penalty, min_tokens. */
  topK: number;
  minP: number;
  repetitionPenalty: number;
  /** Tokens generated before an end id may end the reply (vLLM's min_tokens; 0: none). */
  minTokens: number;
  /** Choices from the one prompt (OpenAI's n). */
  n: number;
  /** Log-probabilities asked: how many most likely tokens beside each chosen one (completions' logprobs; chat's top_logprobs once logprobs is true); null: none. */
  logprobs: number | null;
  /** /v1/completions' echo: the prompt comes back before the reply, with its log-probabilities when logprobs are asked. */
  echo: boolean;
  presencePenalty: number;
  frequencyPenalty: number;
  /** logit_bias as [token id, bias] pairs (ids checked against the vocabulary by the server, which knows it). */
  logitBias: [number, number][];
  /** response_format json_object / json_schema: the grammar every choice is decoded under (null: free text). */
  grammar: JsonGrammar | null;
  /** Chat's tools and tool_choice (none without tools). */
  tools: ToolFunction[];
  toolChoice: ToolChoice;
}

/** The prompts one /v1/completions request may carry. */
export const MAX_PROMPTS = 128;

/** The most likely tokens a request may ask beside each chosen one (OpenAI's chat limit; vLLM's default max_logprobs is 20 too). */
export const MAX_TOP_LOGPROBS = 20;

type Body = Record<string, unknown>;

/** The fields we know: those we serve, and those clients send that change nothing here (or are accepted at their default). */
const IGNORED = new Set(['model', 'prompt', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'seed', 'stop', 'stream', 'stream_options', 'n', 'user', 'frequency_penalty', 'presence_penalty', 'logprobs', 'echo', 'best_of', 'suffix', 'logit_bias', 'top_logprobs', 'response_format', 'tools', 'tool_choice', 'parallel_tool_calls', 'store', 'metadata', 'ignore_eos',
  'top_k', 'min_p', 'repetition_penalty', 'min_tokens']);

function optionalNumber(b: Body, key: string, min: number, max: number, fallback: number): number {
  const v = b[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badField(key, `must be a number, got ${JSON.stringify(v)}`);
  if (v < min || v > max) throw badField(key, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

function optionalInt(b: Body, key: string, min: number): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badField(key, `must be an integer, got ${JSON.stringify(v)}`);
  if (v < min) throw badField(key, `must be at least ${min}, got ${v}`);
  return v;
}

/** Refuses features we do not serve when a request asks for them (a value other than their default). */
function refuseUnserved(b: Body, chat: boolean): void {
  const unserved: [string, (v: unknown) => boolean][] = [
    ['best_of', (v) => v !== 1], ['suffix', () => true],
    // Chat has no echo in OpenAI's API; top_logprobs and tools are chat's (completions' logprobs is its count).
    ...(chat ? [['echo', (v: unknown) => v !== false] as [string, (v: unknown) => boolean]] : [['top_logprobs', () => true] as [string, (v: unknown) => boolean], ['tools', (v: unknown) => !(Array.isArray(v) && v.length === 0)] as [string, (v: unknown) => boolean]]),
  ];
  for (const [key, asked] of unserved) {
    if (b[key] !== undefined && b[key] !== null && asked(b[key])) throw new ApiError(400, `'${key}' is not supported by this server${key === 'best_of' ? ' (use n: the choices are all returned)' : ''}`, 'invalid_request_error', key, 'unsupported_parameter');
  }
  const unknown = Object.keys(b).find((k) => !IGNORED.has(k));
  if (unknown) throw new ApiError(400, `unknown field '${unknown}'`, 'invalid_request_error', unknown, 'unknown_parameter');
}

/** How many most likely tokens a request asks beside each chosen one, or null for no log-probabilities. */
function logprobsAsked(b: Body, chat: boolean): number | null {
  if (!chat) {
    // Completions: an integer count (0: the chosen token's alone); false is taken as "none", as null.
    if (b.logprobs === false) return null;
    const k = optionalInt(b, 'logprobs', 0);
    if (k !== undefined && k > MAX_TOP_LOGPROBS) throw badField('logprobs', `must be at most ${MAX_TOP_LOGPROBS}, got ${k}`);
    return k ?? null;
  }
  if (b.logprobs !== undefined && b.logprobs !== null && typeof b.logprobs !== 'boolean') throw badField('logprobs', 'must be a boolean (chat: top_logprobs says how many alternatives)');
  const top = optionalInt(b, 'top_logprobs', 0);
  if (top !== undefined && top > MAX_TOP_LOGPROBS) throw badField('top_logprobs', `must be at most ${MAX_TOP_LOGPROBS}, got ${top}`);
  if (b.logprobs !== true) {
    if (top !== undefined && top > 0) throw badField('top_logprobs', 'needs logprobs: true');
    return null;
  }
  return top ?? 0;
}

/** logit_bias: {"token id": bias}, biases −100..100, as [id, bias] pairs. */
function logitBias(b: Body): [number, number][] {
  const v = b.logit_bias;
  if (v === undefined || v === null) return [];
  if (typeof v !== 'object' || Array.isArray(v)) throw badField('logit_bias', 'must be an object mapping token ids (as strings) to biases');
  return Object.entries(v as Body).map(([key, bias]) => {
    if (!/^\d+$/.test(key)) throw badField('logit_bias', `keys must be token ids, got ${JSON.stringify(key)}`);
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100) throw badField('logit_bias', `biases must be numbers between -100 and 100, got ${JSON.stringify(bias)} for token ${key}`);
    return [Number(key), bias];
  });
}

function stopStrings(b: Body): string[] {
  const v = b.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw badField('stop', 'must be a non-empty string or an array of at most 4 of them');
  }
  return list as string[];
}

/** One prompt: a non-empty string or a non-empty list of token ids. */
function isPrompt(p: unknown): p is string | number[] {
  if (typeof p === 'string') return p.length > 0;
  return Array.isArray(p) && p.length > 0 && p.every((t) => Number.isInteger(t) && t >= 0);
}

/** A string, a list of token ids, or a list of either (several prompts). */
function completionPrompts(b: Body): (string | number[])[] {
  const p = b.prompt;
  if (isPrompt(p)) return [p];
  const several = Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string' || Array.isArray(x));
  if (several && p.length > MAX_PROMPTS) throw badField('prompt', `holds ${p.length} prompts, at most ${MAX_PROMPTS} per request`);
  if (several && p.every(isPrompt)) return p as (string | number[])[];
  throw badField('prompt', 'must be a non-empty string, an array of token ids, or an array of either (several prompts), none of them empty');
}

function chatMessages(b: Body): ChatMessage[] {
  const m = b.messages;
  if (!Array.isArray(m) || m.length === 0) throw badField('messages', 'must be a non-empty array of {role, content}');
  return m.map((x: unknown, i) => {
    const msg = x as Body;
    if (typeof msg !== 'object' || msg === null || typeof msg.role !== 'string') throw badField(`messages[${i}].role`, 'must be a string');
    let content = msg.content;
    // Content parts: the text ones joined (images and audio are refused).
    if (Array.isArray(content)) {
      if (!content.every((p: Body) => p?.type === 'text' && typeof p.text === 'string')) throw badField(`messages[${i}].content`, 'parts must all be {type: "text", text}');
      content = content.map((p: Body) => p.text).join('');
    }
    // An assistant message that only calls tools has no content.
    if ((content === null || content === undefined) && msg.role === 'assistant' && Array.isArray(msg.tool_calls)) content = '';
    if (typeof content !== 'string') throw badField(`messages[${i}].content`, 'must be a string');
    if (msg.role === 'tool' && msg.tool_call_id !== undefined && typeof msg.tool_call_id !== 'string') throw badField(`messages[${i}].tool_call_id`, 'must be a string');
    return {
      role: msg.role, content,
      ...(msg.tool_calls !== undefined && msg.tool_calls !== null ? { tool_calls: messageToolCalls(msg.tool_calls, i) } : {}),
      ...(typeof msg.tool_call_id === 'string' ? { tool_call_id: msg.tool_call_id } : {}),
      ...(typeof msg.name === 'string' ? { name: msg.name } : {}),
    };
  });
}

/** An assistant message's tool_calls, their arguments (JSON text, as OpenAI sends them) parsed for the template. */
function messageToolCalls(v: unknown, i: number): NonNullable<ChatMessage['tool_calls']> {
  if (!Array.isArray(v)) throw badField(`messages[${i}].tool_calls`, 'must be an array of {id, type: "function", function: {name, arguments}}');
  return v.map((c: Body, j) => {
    const f = c?.function as Body | undefined;
    const where = `messages[${i}].tool_calls[${j}]`;
    if (typeof f !== 'object' || f === null || typeof f.name !== 'string') throw badField(`${where}.function.name`, 'must be a string');
    let args: unknown = f.arguments ?? {};
    if (typeof args === 'string') {
      try {
        args = JSON.parse(args);
      } catch {
        throw badField(`${where}.function.arguments`, 'must be a JSON object as text');
      }
    }
    return { id: typeof c.id === 'string' ? c.id : `call_${j}`, type: 'function' as const, function: { name: f.name, arguments: args } };
  });
}

/** Reads a request body (already parsed JSON) of `/v1/completions` (chat false) or `/v1/chat/completions` (chat true). */
export function parseCompletionRequest(body: unknown, chat: boolean): CompletionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object');
  const b = body as Body;
  refuseUnserved(b, chat);
  if (typeof b.model !== 'string') throw badField('model', 'must be a string (see GET /v1/models)');
  for (const key of ['stream', 'ignore_eos', 'echo']) {
    if (b[key] !== undefined && b[key] !== null && typeof b[key] !== 'boolean') throw badField(key, 'must be a boolean');
  }
  const so = b.stream_options as Body | undefined | null;
  if (so !== undefined && so !== null && (typeof so !== 'object' || (so.include_usage !== undefined && typeof so.include_usage !== 'boolean'))) {
    throw badField('stream_options', 'must be {include_usage: boolean}');
  }
  const maxKey = b.max_completion_tokens !== undefined && b.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const echo = b.echo === true;
  const tools = chat ? parseTools(b.tools) : [];
  if (b.parallel_tool_calls !== undefined && b.parallel_tool_calls !== null && typeof b.parallel_tool_calls !== 'boolean') throw badField('parallel_tool_calls', 'must be a boolean');
  return {
    model: b.model,
    prompts: chat ? [chatMessages(b)] : completionPrompts(b),
    // OpenAI's legacy completions default to 16 tokens; chat goes on until EOS or the context's end.
    // 0 is a request to score the prompt alone: echo says what comes back.
    maxTokens: optionalInt(b, maxKey, echo ? 0 : 1) ?? (chat ? null : 16),
    temperature: optionalNumber(b, 'temperature', 0, 2, 1),
    topP: optionalNumber(b, 'top_p', 0, 1, 1),
    seed: optionalInt(b, 'seed', 0),
    stop: stopStrings(b),
    stream: b.stream === true,
    includeUsage: so?.include_usage === true,
    ignoreEos: b.ignore_eos === true,
    // vLLM's -1 is its "off", as our 0.
    topK: Math.max(0, optionalInt(b, 'top_k', -1) ?? 0),
    minP: optionalNumber(b, 'min_p', 0, 1, 0),
    repetitionPenalty: optionalNumber(b, 'repetition_penalty', Number.MIN_VALUE, 10, 1),
    minTokens: optionalInt(b, 'min_tokens', 0) ?? 0,
    n: optionalInt(b, 'n', 1) ?? 1,
    logprobs: logprobsAsked(b, chat),
    echo,
    presencePenalty: optionalNumber(b, 'presence_penalty', -2, 2, 0),
    frequencyPenalty: optionalNumber(b, 'frequency_penalty', -2, 2, 0),
    logitBias: logitBias(b),
    grammar: responseGrammar(b.response_format),
    tools,
    toolChoice: parseToolChoice(b.tool_choice, tools),
  };
}
