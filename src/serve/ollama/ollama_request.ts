/**
 * Ollama's /api/chat and /api/generate request bodies, checked and put in our terms: the messages
 * or the prompt, streaming (Ollama's default: on), and `options` as sampling. Unset options take
 * Ollama's documented defaults (temperature 0.8, top_k 40, top_p 0.9, min_p 0, num_predict -1: until
 * an end or the context). An option or field this server does not honour is refused naming it, not
 * ignored: a client that asks for mirostat must not get plain sampling without being told.
 */
import type { SequenceOptions } from '../../generate/sequence.js';
import type { ChatMessage } from '../request.js';

/** A request Ollama's API refuses, in its error shape ({"error": message}) with the HTTP status. */
export class OllamaError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface OllamaSampling {
  maxNewTokens: number | null;
  numCtx: number | null;
  options: SequenceOptions;
  /** `format`: "json" (any JSON value) or a JSON schema the reply must fit; null: free text. */
  format: 'json' | Record<string, unknown> | null;
}

export interface OllamaChat {
  kind: 'chat';
  model: string;
  messages: ChatMessage[];
  stream: boolean;
  sampling: OllamaSampling;
}

export interface OllamaGenerate {
  kind: 'generate';
  model: string;
  prompt: string;
  system: string | null;
  /** The prompt as it is, no template (Ollama's raw). */
  raw: boolean;
  /** A previous reply's `context`: the ids it continues. */
  context: number[] | null;
  stream: boolean;
  sampling: OllamaSampling;
}

const DEFAULTS = { temperature: 0.8, top_k: 40, top_p: 0.9, min_p: 0 };
/** Fields a client may send that change nothing here (keep_alive: the model stays loaded anyway). */
const HARMLESS = new Set(['keep_alive']);
const NOT_SERVED: Record<string, string> = {
  tools: 'tool calls are not served yet',
  images: 'this server runs text models only',
  think: 'thinking is not served',
  template: 'a request\'s own template is not served; the model\'s chat template is used',
  suffix: 'fill-in-the-middle (suffix) is not served',
  logprobs: 'logprobs are served on /v1/completions and /v1/chat/completions',
  top_logprobs: 'logprobs are served on /v1/completions and /v1/chat/completions',
};
const OPTION_READERS: Record<string, (v: unknown, o: OllamaSampling) => void> = {
  // -1: until an end or the context; -2: fill the context (the same here).
  num_predict: (v, o) => {
    const n = int(v, 'num_predict', -2);
    o.maxNewTokens = n < 0 ? null : n;
  },
  num_ctx: (v, o) => (o.numCtx = int(v, 'num_ctx', 1)),
  temperature: (v, o) => (o.options.temperature = num(v, 'temperature', 0)),
  top_k: (v, o) => (o.options.topK = int(v, 'top_k', 0)),
  top_p: (v, o) => (o.options.topP = num(v, 'top_p', 0, 1)),
  min_p: (v, o) => (o.options.minP = num(v, 'min_p', 0, 1)),
  seed: (v, o) => (o.options.seed = int(v, 'seed', 0)),
  repeat_penalty: (v, o) => (o.options.repetitionPenalty = num(v, 'repeat_penalty', Number.MIN_VALUE)),
  presence_penalty: (v, o) => (o.options.presencePenalty = num(v, 'presence_penalty', -2, 2)),
  frequency_penalty: (v, o) => (o.options.frequencyPenalty = num(v, 'frequency_penalty', -2, 2)),
  stop: (v, o) => (o.options.stopStrings = strings(v, 'stop')),
};

function fail(field: string, why: string): never {
  throw new OllamaError(400, `${field}: ${why}`);
}

function num(v: unknown, field: string, min: number, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(`options.${field}`, `must be a number${max < Infinity ? ` in [${min}, ${max}]` : ` >= ${min}`}, got ${JSON.stringify(v)}`);
  return v;
}

function int(v: unknown, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`options.${field}`, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

function strings(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s !== '')) fail(`options.${field}`, 'must be a list of non-empty strings');
  return v as string[];
}

function object(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new OllamaError(400, 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Refuses a field this server does not honour (a false/empty one asks for nothing and passes). */
function refuseUnserved(r: Record<string, unknown>, known: readonly string[]): void {
  for (const [key, value] of Object.entries(r)) {
    if (known.includes(key) || HARMLESS.has(key)) continue;
    const asked = value !== undefined && value !== null && value !== false && !(Array.isArray(value) && value.length === 0) && value !== '';
    if (!asked) continue;
    fail(key, NOT_SERVED[key] ?? 'is not a field this server reads');
  }
}

function formatOf(v: unknown): OllamaSampling['format'] {
  if (v === undefined || v === null || v === '') return null;
  if (v === 'json') return 'json';
  if (typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  fail('format', `must be "json" or a JSON schema object, got ${JSON.stringify(v)}`);
}

function samplingOf(options: unknown, format: unknown): OllamaSampling {
  const out: OllamaSampling = {
    maxNewTokens: null, numCtx: null, options: { temperature: DEFAULTS.temperature, topK: DEFAULTS.top_k, topP: DEFAULTS.top_p, minP: DEFAULTS.min_p }, format: formatOf(format),
  };
  if (options === undefined || options === null) return out;
  for (const [key, value] of Object.entries(object(options))) {
    const read = OPTION_READERS[key];
    if (!read) fail(`options.${key}`, `is not an option this server honours (it reads ${Object.keys(OPTION_READERS).join(', ')})`);
    read(value, out);
  }
  if (out.options.temperature === 0) out.options = { ...out.options, topK: 0, topP: 1, minP: 0 };
  return out;
}

function modelOf(r: Record<string, unknown>): string {
  if (typeof r.model !== 'string' || r.model === '') fail('model', 'is required: a model name from /api/tags');
  return r.model;
}

function streamOf(r: Record<string, unknown>): boolean {
  if (r.stream !== undefined && typeof r.stream !== 'boolean') fail('stream', 'must be true or false');
  return r.stream !== false;
}

export function parseOllamaChat(body: unknown): OllamaChat {
  const r = object(body);
  refuseUnserved(r, ['model', 'messages', 'stream', 'options', 'format']);
  const messages = r.messages ?? [];
  if (!Array.isArray(messages) || !messages.every((m) => typeof m?.role === 'string' && typeof m?.content === 'string')) fail('messages', 'must be a list of {"role", "content"}');
  return { kind: 'chat', model: modelOf(r), messages: messages.map((m: ChatMessage) => ({ role: m.role, content: m.content })), stream: streamOf(r), sampling: samplingOf(r.options, r.format) };
}

export function parseOllamaGenerate(body: unknown): OllamaGenerate {
  const r = object(body);
  refuseUnserved(r, ['model', 'prompt', 'system', 'raw', 'context', 'stream', 'options', 'format']);
  if (r.prompt !== undefined && typeof r.prompt !== 'string') fail('prompt', 'must be a string');
  if (r.system !== undefined && typeof r.system !== 'string') fail('system', 'must be a string');
  if (r.raw !== undefined && typeof r.raw !== 'boolean') fail('raw', 'must be true or false');
  const context = r.context ?? null;
  if (context !== null && (!Array.isArray(context) || !context.every((id) => Number.isInteger(id) && id >= 0))) fail('context', 'must be a list of token ids (a previous reply\'s context)');
  return {
    kind: 'generate', model: modelOf(r), prompt: (r.prompt as string | undefined) ?? '', system: (r.system as string | undefined) ?? null, raw: r.raw === true,
    context: context as number[] | null, stream: streamOf(r), sampling: samplingOf(r.options, r.format),
  };
}
