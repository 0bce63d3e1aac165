/**
 * The server's log-probabilities against transformers (issue 48): a random-weight Llama saved as a
 * Hugging Face folder and served; /v1/completions' legacy logprobs (echo, max_tokens 0, generated and
 * sampled tokens) and /v1/chat/completions' logprobs + top_logprobs equal transformers'
 * log_softmax of the same model's logits within 1e-3, streamed chunks carry the same numbers, and
 * concurrent requests with different settings each get what they get alone. Then the exact request
 * lm-evaluation-harness's local-completions sends for a loglikelihood (lm_eval/models/
 * openai_completions.py, _create_payload with generate=False) scores a small multiple-choice set,
 * parsed as its parse_logprobs does, and picks the choices transformers' log-probabilities pick.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { saveFolder } from '../../src/nn/interchange/hf_folder.js';
import { chatPrompt } from '../../src/serve/served_model.js';
import { type ModelServer, startModelServer } from '../../src/serve/server.js';
import { Rng } from '../../src/util/rng.js';
import { FAMILIES, randomModel } from '../generate/families.js';
import { runReference } from '../helpers/python_reference.js';
import { PYTHON, SKIP } from '../nn/interchange/hf_transformers.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/serve/hf_logprobs.py');
const TOLERANCE = 1e-3;
const [, SPEC] = FAMILIES[1];
const VOCAB = 61;

/** Every id its own one-character text ('0' onwards), so a token's text names it and offsets count tokens. */
const chars = {
  vocabSize: VOCAB,
  encode: (text: string): number[] => Array.from(text, (c) => (((c.charCodeAt(0) - 48) % VOCAB) + VOCAB) % VOCAB),
  decode: (ids: ArrayLike<number>): string => Array.from(ids, (i) => String.fromCharCode(48 + i)).join(''),
};
const idOf = (token: string): number => token.charCodeAt(0) - 48;

interface Legacy {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}
interface ChatEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}
interface Completion {
  choices: { index: number; text: string; logprobs: Legacy | null; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number };
}
interface ChatCompletion {
  choices: { index: number; message: { content: string }; logprobs: { content: ChatEntry[] } | null }[];
}

const dir = mkdtempSync(join(tmpdir(), 'smol-logprobs-'));
const folder = join(dir, 'model');
const model = randomModel(SPEC, 31);
const served = { id: 'tiny-llama', model, tokenizer: chars, eosIds: [], context: 64, chatTemplate: null };
let server: ModelServer;

/**
 * POSTs `body` on a connection of its own (as lm-eval's requests.post does): the Python reference
 * blocks this process for seconds, and a kept-alive connection reused just as the server's
 * keep-alive timer fires is reset (ECONNRESET), a race of the test's making, not the server's.
 */
function send(url: string, body: object): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: 'Bearer ' }, timeout: 20_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${url} timed out`)));
    req.end(JSON.stringify(body));
  });
}

async function post<T>(path: string, body: object, url = server.url): Promise<T> {
  const { status, text } = await send(`${url}${path}`, body);
  assert.equal(status, 200, text);
  return JSON.parse(text) as T;
}

/** A streamed request's chunks (the JSON of each data: line before [DONE]). */
async function streamed<T>(path: string, body: object): Promise<T[]> {
  const { status, text } = await send(`${server.url}${path}`, { ...body, stream: true });
  assert.equal(status, 200, text);
  const events = text.split('\n\n').filter((e) => e.length > 0);
  assert.equal(events.at(-1), 'data: [DONE]');
  return events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as T);
}

/** transformers' log_softmax rows [T][vocab] for each sequence, from one Python process. */
function reference(sequences: number[][]): number[][][] {
  const file = join(dir, 'job.json');
  writeFileSync(file, JSON.stringify({ folder, sequences }));
  const r = runReference({ python: PYTHON!, args: [SCRIPT, file], root: dir, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`hf_logprobs.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as number[][][];
}

/** The ids of a row's k largest log-probabilities, largest first. */
function topOf(row: number[], k: number): number[] {
  return [...row.keys()].sort((a, b) => row[b] - row[a] || a - b).slice(0, k);
}

const near = (ours: number | null, theirs: number, what: string): void => {
  assert.ok(ours !== null && Math.abs(ours - theirs) <= TOLERANCE, `${what}: ours ${ours}, transformers ${theirs}`);
};

/** Checks legacy logprobs of `ids` (its first token unscored when `echoed`, else the first scored after `prompt`) against `rows`. */
function checkLegacy(l: Legacy, ids: number[], rows: number[][], from: number, k: number, what: string): void {
  assert.deepEqual(l.tokens, ids.slice(from).map((id) => chars.decode([id])), `${what}: tokens`);
  assert.deepEqual(l.text_offset, l.tokens.map((_, i) => i), `${what}: text_offset`);
  l.tokens.forEach((_, i) => {
    const t = from + i;
    if (t === 0) return assert.deepEqual([l.token_logprobs[0], l.top_logprobs[0]], [null, null], `${what}: the first prompt token`);
    near(l.token_logprobs[i], rows[t - 1][ids[t]], `${what}: token ${t}`);
    const top = l.top_logprobs[i]!;
    const want = topOf(rows[t - 1], k);
    // The k most likely and the token itself (OpenAI's and vLLM's: up to k + 1 entries).
    assert.deepEqual(Object.keys(top).map(idOf).sort((a, b) => a - b), [...new Set([...want, ids[t]])].sort((a, b) => a - b), `${what}: top at ${t}`);
    for (const [token, lp] of Object.entries(top)) near(lp, rows[t - 1][idOf(token)], `${what}: top ${token} at ${t}`);
  });
}

describe('serve: log-probabilities equal transformers\' log_softmax', { skip: SKIP, timeout: 240_000 }, () => {
  const rng = new Rng(8);
  const prompt = Array.from({ length: 10 }, () => rng.int(VOCAB));
  const messages = [{ role: 'user', content: 'abc' }];
  const chatIds = chars.encode(chatPrompt(served, messages));
  const greedyBody = { model: 'tiny-llama', prompt, max_tokens: 5, temperature: 0, logprobs: 5, echo: true };
  const scoreBody = { model: 'tiny-llama', prompt, max_tokens: 0, logprobs: 3, echo: true };
  const sampledBody = { model: 'tiny-llama', prompt: chars.decode(prompt), max_tokens: 6, temperature: 1.7, seed: 11, logprobs: 2 };
  const chatBody = { model: 'tiny-llama', messages, max_tokens: 6, temperature: 1.3, seed: 5, logprobs: true, top_logprobs: 3 };
  let greedy: Completion;
  let scoredOnly: Completion;
  let sampled: Completion;
  let chat: ChatCompletion;
  let rows: { greedy: number[][]; sampled: number[][]; chat: number[][] };
  let generated: { greedy: number[]; sampled: number[]; chat: number[] };

  before(async () => {
    saveFolder(folder, model, SPEC);
    server = await startModelServer(served, { port: 0, maxBatch: 8 });
    greedy = await post<Completion>('/v1/completions', greedyBody);
    scoredOnly = await post<Completion>('/v1/completions', scoreBody);
    sampled = await post<Completion>('/v1/completions', sampledBody);
    chat = await post<ChatCompletion>('/v1/chat/completions', chatBody);
    generated = {
      greedy: greedy.choices[0].logprobs!.tokens.slice(prompt.length).map(idOf),
      sampled: sampled.choices[0].logprobs!.tokens.map(idOf),
      chat: chat.choices[0].logprobs!.content.map((c) => idOf(c.token)),
    };
    const [g, s, c] = reference([[...prompt, ...generated.greedy], [...prompt, ...generated.sampled], [...chatIds, ...generated.chat]]);
    rows = { greedy: g, sampled: s, chat: c };
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('completions with echo: the prompt\'s tokens (the first null) and the generated ones, top_logprobs and text_offset', () => {
    const c = greedy.choices[0];
    assert.equal(c.text, chars.decode([...prompt, ...generated.greedy]));
    assert.equal(generated.greedy.length, 5);
    checkLegacy(c.logprobs!, [...prompt, ...generated.greedy], rows.greedy, 0, 5, 'echo + greedy');
    // Greedy picked each row's most likely token.
    generated.greedy.forEach((id, i) => assert.equal(id, topOf(rows.greedy[prompt.length - 1 + i], 1)[0]));
  });

  it('max_tokens 0 with echo scores the prompt alone', () => {
    const c = scoredOnly.choices[0];
    assert.deepEqual([c.text, c.finish_reason, scoredOnly.usage.completion_tokens], [chars.decode(prompt), 'length', 0]);
    checkLegacy(c.logprobs!, prompt, rows.greedy, 0, 3, 'max_tokens 0');
  });

  it('sampled tokens\' logprobs are the model\'s (before temperature), without echo only the reply\'s', () => {
    const c = sampled.choices[0];
    assert.equal(c.text, chars.decode(generated.sampled));
    checkLegacy(c.logprobs!, [...prompt, ...generated.sampled], rows.sampled, prompt.length, 2, 'sampled at temperature 1.7');
  });

  it('chat: logprobs with top_logprobs, each token\'s bytes', () => {
    const content = chat.choices[0].logprobs!.content;
    assert.equal(chat.choices[0].message.content, chars.decode(generated.chat));
    content.forEach((e, i) => {
      const row = rows.chat[chatIds.length - 1 + i];
      near(e.logprob, row[idOf(e.token)], `chat token ${i}`);
      assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')]);
      assert.deepEqual(e.top_logprobs.map((t) => idOf(t.token)), topOf(row, 3), `chat top at ${i}`);
      e.top_logprobs.forEach((t) => near(t.logprob, row[idOf(t.token)], `chat top ${t.token} at ${i}`));
    });
  });

  it('streamed, each chunk carries its tokens\' logprobs: together the whole reply\'s', async () => {
    const chunks = await streamed<Completion>('/v1/completions', greedyBody);
    const l = chunks.flatMap((ch) => (ch.choices[0].logprobs ? [ch.choices[0].logprobs] : []));
    const joined = { tokens: l.flatMap((x) => x.tokens), token_logprobs: l.flatMap((x) => x.token_logprobs), top_logprobs: l.flatMap((x) => x.top_logprobs), text_offset: l.flatMap((x) => x.text_offset) };
    assert.deepEqual(joined, greedy.choices[0].logprobs);
    assert.equal(chunks.map((ch) => ch.choices[0].text).join(''), greedy.choices[0].text);
    const chatChunks = await streamed<{ choices: { delta: { content?: string }; logprobs: { content: ChatEntry[] } | null }[] }>('/v1/chat/completions', chatBody);
    assert.deepEqual(chatChunks.flatMap((ch) => ch.choices[0].logprobs?.content ?? []), chat.choices[0].logprobs!.content);
    // Every chunk with text has the logprobs of the tokens that made it.
    for (const ch of chatChunks) if (ch.choices[0].delta.content) assert.equal(ch.choices[0].logprobs!.content.map((e) => e.token).join(''), ch.choices[0].delta.content);
  });

  it('concurrent requests with different settings (continuous batching) each get what they get alone', async () => {
    const strip = (r: { choices: unknown[] }): unknown[] => r.choices;
    const [g, s, x, c, plain, n] = await Promise.all([
      post<Completion>('/v1/completions', greedyBody), post<Completion>('/v1/completions', scoreBody), post<Completion>('/v1/completions', sampledBody),
      post<ChatCompletion>('/v1/chat/completions', chatBody), post<Completion>('/v1/completions', { model: 'tiny-llama', prompt, max_tokens: 5, temperature: 0 }),
      post<Completion>('/v1/completions', { ...sampledBody, n: 2, echo: true }),
    ]);
    assertClose([strip(g), strip(s), strip(x), strip(c)], [strip(greedy), strip(scoredOnly), strip(sampled), strip(chat)], 1e-5);
    assert.deepEqual([plain.choices[0].text, plain.choices[0].logprobs], [chars.decode(generated.greedy), null]);
    // n with echo: every choice echoes the scored prompt; choice 0 is the seeded request's own.
    assert.deepEqual(n.choices[0].logprobs!.tokens.slice(prompt.length), sampled.choices[0].logprobs!.tokens);
    for (const choice of n.choices) assert.deepEqual(choice.logprobs!.token_logprobs.slice(0, prompt.length), n.choices[0].logprobs!.token_logprobs.slice(0, prompt.length));
  });
});

/** `a` and `b` equal but for numbers, which may differ by `tol` (a row batched with others rounds its sums in another order). */
function assertClose(a: unknown, b: unknown, tol: number, path = ''): void {
  if (typeof a === 'number' && typeof b === 'number') return assert.ok(Math.abs(a - b) <= tol, `${path}: ${a} against ${b}`);
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return assert.deepEqual(a, b, path);
  assert.deepEqual(Object.keys(a), Object.keys(b), path);
  for (const k of Object.keys(a)) assertClose((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], tol, `${path}.${k}`);
}

/** lm-evaluation-harness's LocalCompletionsAPI.parse_logprobs, as written there: per choice (by index), the continuation's summed logprob and whether it is greedy. */
function parseLogprobs(outputs: Completion[], ctxlens: number[]): [number, boolean][] {
  const res: [number, boolean][] = [];
  for (const out of outputs) {
    const choices = [...out.choices].sort((a, b) => a.index - b.index);
    choices.forEach((choice, i) => {
      const ctxlen = ctxlens[i];
      assert.ok(ctxlen > 0, 'Context length must be greater than 0');
      const tokens = choice.logprobs!.token_logprobs.slice(ctxlen, -1) as number[];
      const top = choice.logprobs!.top_logprobs.slice(ctxlen, -1) as Record<string, number>[];
      const isGreedy = tokens.every((tok, j) => tok === Math.max(...Object.values(top[j])));
      res.push([tokens.reduce((sum, x) => sum + x, 0), isGreedy]);
    });
  }
  return res;
}

describe('serve: lm-evaluation-harness\'s local-completions scores a multiple-choice set', { skip: SKIP, timeout: 240_000 }, () => {
  const rng = new Rng(21);
  const draw = (n: number): number[] => Array.from({ length: n }, () => rng.int(VOCAB));
  // Four questions, each a context and three continuations of 1 to 4 tokens.
  const questions = Array.from({ length: 4 }, (_, q) => ({ context: draw(5 + 2 * q), continuations: [1, 3, 4].map((n) => draw(n)) }));

  it('sends lm-eval\'s loglikelihood request (token ids, echo, logprobs 1, max_tokens 1), parses as it does, picks what transformers picks', async () => {
    const lmDir = mkdtempSync(join(tmpdir(), 'smol-lmeval-'));
    const lmFolder = join(lmDir, 'model');
    saveFolder(lmFolder, model, SPEC);
    const lm = await startModelServer(served, { port: 0, maxBatch: 4 });
    try {
      const pairs = questions.flatMap((q) => q.continuations.map((cont) => ({ ctx: q.context, cont })));
      // LocalCompletionsAPI._create_payload(messages, generate=False, seed=1234): the batch of one prompt as a list of token lists.
      const outputs = await Promise.all(pairs.map(async ({ ctx, cont }) => {
        const payload = { model: 'tiny-llama', prompt: [[...ctx, ...cont]], temperature: 0, max_tokens: 1, logprobs: 1, seed: 1234, echo: true };
        return post<Completion>('/v1/completions', payload, lm.url);
      }));
      const ours = pairs.map((p, i) => parseLogprobs([outputs[i]], [p.ctx.length])[0]);
      const file = join(lmDir, 'job.json');
      writeFileSync(file, JSON.stringify({ folder: lmFolder, sequences: pairs.map((p) => [...p.ctx, ...p.cont]) }));
      const r = runReference({ python: PYTHON!, args: [SCRIPT, file], root: lmDir, timeout: 300_000 });
      assert.equal(r.status, 0, r.stderr);
      const theirRows = JSON.parse(r.stdout.trim().split('\n').pop()!) as number[][][];
      // transformers: position t's row scores token t + 1; the continuation's tokens summed.
      const theirs = pairs.map((p, i) => {
        const rowsOf = p.cont.map((_, j) => theirRows[i][p.ctx.length + j - 1]);
        return [p.cont.reduce((sum, id, j) => sum + rowsOf[j][id], 0), p.cont.every((id, j) => topOf(rowsOf[j], 1)[0] === id)] as const;
      });
      pairs.forEach((_, i) => {
        near(ours[i][0], theirs[i][0], `pair ${i} loglikelihood`);
        assert.equal(ours[i][1], theirs[i][1], `pair ${i} is_greedy`);
      });
      // lm-eval's batch_size 3: one request per question, its three prompts as a list of token lists, parsed with their ctxlens.
      const batched = await Promise.all(questions.map(async (q) => {
        const payload = { model: 'tiny-llama', prompt: q.continuations.map((cont) => [...q.context, ...cont]), temperature: 0, max_tokens: 1, logprobs: 1, seed: 1234, echo: true };
        return parseLogprobs([await post<Completion>('/v1/completions', payload, lm.url)], q.continuations.map(() => q.context.length));
      }));
      assertClose(batched.flat(), ours, 1e-5);
      const pick = (scores: number[]): number[] => questions.map((_, q) => [0, 1, 2].reduce((best, c) => (scores[q * 3 + c] > scores[q * 3 + best] ? c : best), 0));
      assert.deepEqual(pick(ours.map((x) => x[0])), pick(theirs.map((x) => x[0])));
    } finally {
      await lm.close();
      rmSync(lmDir, { recursive: true, force: true });
    }
  });
});
