/**
 * Driving `smolcluster serve` from a bench as real clients do (bench:serve, bench:grpo): the server in
 * a child of its own on 127.0.0.1, streamed /v1/completions over HTTP, every stream's tokens counted
 * from the usage chunk and the wall time taken from the first request to the last [DONE].
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from './free_port.js';
import { threadEnv } from './child.js';

const READY_TIMEOUT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 10 * 60_000;

export interface StreamResult { tokens: number; firstTokenMs: number; doneMs: number }
export interface Run { streams: number; tokens: number; wallMs: number; tokensPerSecond: number; firstTokenMs: number[]; endedEarly: number }

/**
 * The schema of bench:serve --constrain: an object holding a list of strings, which a reply can keep
 * extending (strings, more items) as ignore_eos asks, with properties, an array and strings on the path.
 */
export const CONSTRAINED_SCHEMA = {
  type: 'object',
  properties: { title: { type: 'string' }, lines: { type: 'array', items: { type: 'string' } } },
  required: ['title', 'lines'],
  additionalProperties: false,
};
const CONSTRAINED_FORMAT = { type: 'json_schema', json_schema: { name: 'bench', schema: CONSTRAINED_SCHEMA, strict: true } };

/** How each stream samples: greedy by default; `n` choices of its prompt (one prefill, the cache copied); under CONSTRAINED_SCHEMA. */
export interface StreamOptions {
  constrain?: boolean;
  /** Default 0: greedy. */
  temperature?: number;
  /** A seeded request samples the same tokens again. */
  seed?: number;
  /** Choices of the prompt (OpenAI's n), default 1. */
  n?: number;
}

/** One streamed completion of `newTokens` tokens a choice (ignore_eos); the times are from `t0`. */
export async function streamCompletion(url: string, prompt: number[], newTokens: number, t0: number, o: StreamOptions = {}): Promise<StreamResult> {
  const n = o.n ?? 1;
  const body = {
    model: 'm', prompt, max_tokens: newTokens, temperature: o.temperature ?? 0, ignore_eos: true, stream: true, stream_options: { include_usage: true },
    ...(n > 1 ? { n } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.constrain ? { response_format: CONSTRAINED_FORMAT } : {}),
  };
  const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (!res.ok || !res.body) throw new Error(`smolcluster serve answered ${res.status}: ${await res.text()}`);
  let firstTokenMs = -1;
  let tokens = -1;
  let pending = '';
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    if (firstTokenMs < 0) firstTokenMs = performance.now() - t0;
    pending += decoder.decode(bytes as Uint8Array, { stream: true });
    const events = pending.split('\n\n');
    pending = events.pop()!;
    for (const e of events) {
      const data = e.replace(/^data: /, '');
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data) as { usage?: { completion_tokens: number }; error?: { message: string } };
      if (chunk.error) throw new Error(`smolcluster serve: a stream failed: ${chunk.error.message}`);
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  const want = newTokens * n;
  if (tokens !== want && !(o.constrain && tokens > 0 && tokens < want)) throw new Error(`smolcluster serve: a stream made ${tokens} tokens, not ${want}`);
  return { tokens, firstTokenMs, doneMs: performance.now() - t0 };
}

/** `streams` concurrent streams, one prompt each (the first `streams` of `prompts`). */
export async function concurrent(url: string, prompts: number[][], streams: number, newTokens: number, o: StreamOptions = {}): Promise<Run> {
  const t0 = performance.now();
  const results = await Promise.all(prompts.slice(0, streams).map((p) => streamCompletion(url, p, newTokens, t0, o)));
  const wallMs = Math.max(...results.map((r) => r.doneMs));
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  return { streams, tokens, wallMs, tokensPerSecond: (tokens * 1000) / wallMs, firstTokenMs: results.map((r) => r.firstTokenMs), endedEarly: results.filter((r) => r.tokens < newTokens * (o.n ?? 1)).length };
}

export interface ServerOptions {
  /** The smolcluster CLI script (dist/src/cli/main.js). */
  cli: string;
  folder: string;
  tokenizer: string;
  maxBatch: number;
  precision: string;
  /** Compute threads (default 1). */
  threads?: number;
  /** Write the server's CPU profile into this folder (node --cpu-prof). */
  profile?: string;
}

/** Starts `smolcluster serve` on `folder`; resolves with its URL once /health answers (within READY_TIMEOUT_MS). */
export async function startServer(o: ServerOptions): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const args = [
    ...(o.profile ? ['--cpu-prof', '--cpu-prof-dir', o.profile] : []), o.cli, 'serve', '--model', o.folder, '--model-name', 'm', '--tokenizer', o.tokenizer,
    '--port', String(port), '--max-batch', String(o.maxBatch), '--precision', o.precision,
  ];
  const child = spawn(process.execPath, args, { env: threadEnv(o.threads ?? 1), stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    process.stderr.write(d);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`smolcluster serve exited (${child.exitCode}): ${stderr.trim().slice(-500)}`);
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) return { url, child };
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill();
  throw new Error(`smolcluster serve did not answer /health within ${READY_TIMEOUT_MS / 1000} s: ${stderr.trim().slice(-500)}`);
}

/** SIGTERM, then SIGKILL after 10 s; resolves once it exited. */
export function stopServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
