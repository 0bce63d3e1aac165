/**
 * Task files for `smolcluster eval --task FILE.jsonl`, scored as lm-evaluation-harness scores its
 * three kinds of request. A file holds one kind, told by its first line:
 *   - multiple choice, `{"context", "choices": [...], "answer": index or the choice's text}`: each
 *     choice's summed log-probability after the context (the continuation is `target_delimiter`,
 *     default " ", then the choice, as lm-eval's default delimiter makes it); `acc` counts documents
 *     whose best choice is the answer, `acc_norm` the same with each sum divided by the choice's
 *     length in characters;
 *   - loglikelihood, `{"context", "continuation"}`: `acc` counts continuations that are the greedy
 *     one (every token the most likely), `perplexity` is exp(−mean of the documents' log-likelihoods),
 *     as lm-eval's lambada reports them;
 *   - generate-until, `{"context", "answer", "until"?: [...], "regex"?, "max_tokens"?}`: a greedy
 *     continuation up to a stop text (default: the end-of-text token only) or max_tokens (default
 *     256); `exact_match` counts those equal to the answer (both trimmed), after taking the regex's
 *     first group (or whole match) where one is given.
 * Contexts are encoded as lm-eval's HF model encodes them: no special tokens, trailing spaces moved
 * from the context to the continuation, the continuation's ids those the whole text adds after the
 * context's; an empty context is the BOS token (else end-of-text) alone.
 */
import { DataError } from '../data/errors.js';
import { readJsonlRecords } from '../data/jsonl_records.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { type CausalLm, generate } from '../generate/generate.js';
import { type ScoreOptions, type ScoredRow, scoreRows } from './token_scores.js';

export type TaskKind = 'multiple-choice' | 'loglikelihood' | 'generate-until';

export interface MultipleChoiceDoc {
  context: string;
  choices: string[];
  /** The right choice's index. */
  answer: number;
  delimiter: string;
}

export interface LoglikelihoodDoc {
  context: string;
  continuation: string;
}

export interface GenerateDoc {
  context: string;
  answer: string;
  until: string[];
  regex: RegExp | null;
  maxTokens: number;
}

export type TaskDocs =
  | { kind: 'multiple-choice'; docs: MultipleChoiceDoc[] }
  | { kind: 'loglikelihood'; docs: LoglikelihoodDoc[] }
  | { kind: 'generate-until'; docs: GenerateDoc[] };

/** Counts over a task's documents: what shards add. */
export interface TaskTally {
  kind: TaskKind;
  docs: number;
  /** Right answers: acc (multiple choice, loglikelihood) or exact matches (generate-until). */
  correct: number;
  /** Multiple choice: right by length-normalised log-probability (acc_norm). */
  correctNorm: number;
  /** Loglikelihood: the documents' summed log-likelihoods. */
  logprob: number;
  seconds: number;
}

const GENERATE_MAX_TOKENS = 256;

/** The documents of a task file; a line that is not one of the kinds above is refused naming it. */
export function readTask(file: string): TaskDocs {
  const records = readJsonlRecords(file, '--task takes a JSONL file');
  if (records.length === 0) throw new DataError(file, 'holds no task documents (one JSON object a line)');
  const kind = kindOf(records[0].record, records[0].where);
  const docs = records.map((r) => {
    if (kindOf(r.record, r.where) !== kind) throw new DataError(r.where, `is a ${kindOf(r.record, r.where)} document in a ${kind} task file (one kind a file)`);
    return kind === 'multiple-choice' ? choiceDoc(r.record, r.where) : kind === 'loglikelihood' ? loglikelihoodDoc(r.record, r.where) : generateDoc(r.record, r.where);
  });
  return { kind, docs } as TaskDocs;
}

function kindOf(r: Record<string, unknown>, where: string): TaskKind {
  if ('choices' in r) return 'multiple-choice';
  if ('continuation' in r) return 'loglikelihood';
  if ('answer' in r) return 'generate-until';
  throw new DataError(where, 'has none of "choices" (multiple choice), "continuation" (loglikelihood) or "answer" (generate-until)');
}

function stringField(r: Record<string, unknown>, field: string, where: string, fallback?: string): string {
  const v = r[field] ?? fallback;
  if (typeof v !== 'string') throw new DataError(where, `"${field}" must be a string${v === undefined ? ' (it is missing)' : ''}`);
  return v;
}

function choiceDoc(r: Record<string, unknown>, where: string): MultipleChoiceDoc {
  const choices = r.choices;
  if (!Array.isArray(choices) || choices.length < 2 || !choices.every((c) => typeof c === 'string')) throw new DataError(where, '"choices" must be a list of at least two strings');
  const answer = typeof r.answer === 'string' ? choices.indexOf(r.answer) : r.answer;
  if (typeof answer !== 'number' || !Number.isInteger(answer) || answer < 0 || answer >= choices.length) {
    throw new DataError(where, `"answer" must be a choice's index (0..${choices.length - 1}) or one of the choices, got ${JSON.stringify(r.answer)}`);
  }
  return { context: stringField(r, 'context', where), choices: choices as string[], answer, delimiter: stringField(r, 'target_delimiter', where, ' ') };
}

function loglikelihoodDoc(r: Record<string, unknown>, where: string): LoglikelihoodDoc {
  return { context: stringField(r, 'context', where), continuation: stringField(r, 'continuation', where) };
}

function generateDoc(r: Record<string, unknown>, where: string): GenerateDoc {
  const until = r.until ?? [];
  if (!Array.isArray(until) || !until.every((u) => typeof u === 'string' && u !== '')) throw new DataError(where, '"until" must be a list of non-empty strings');
  let regex: RegExp | null = null;
  if (r.regex !== undefined) {
    try {
      regex = new RegExp(stringField(r, 'regex', where));
    } catch (e) {
      throw new DataError(where, `"regex" does not compile: ${(e as Error).message}`);
    }
  }
  const maxTokens = r.max_tokens ?? GENERATE_MAX_TOKENS;
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) throw new DataError(where, '"max_tokens" must be a positive integer');
  const context = typeof r.prompt === 'string' && r.context === undefined ? r.prompt : stringField(r, 'context', where);
  return { context, answer: stringField(r, 'answer', where), until: until as string[], regex, maxTokens };
}

/** lm-eval's context and continuation ids (HFLM._encode_pair). */
export function encodePair(tokenizer: Tokenizer, context: string, continuation: string): { context: Int32Array; continuation: Int32Array } {
  if (context === '') {
    const start = tokenizer.bos ?? tokenizer.eos;
    if (start === null) throw new Error('a document has an empty context, and the tokenizer has neither a BOS nor an end-of-text token to start from');
    return { context: Int32Array.of(start), continuation: tokenizer.encode(continuation) };
  }
  const spaces = context.length - context.trimEnd().length;
  const [ctx, cont] = spaces > 0 ? [context.slice(0, -spaces), context.slice(-spaces) + continuation] : [context, continuation];
  const whole = tokenizer.encode(ctx + cont);
  const contextIds = tokenizer.encode(ctx);
  return { context: contextIds, continuation: whole.slice(contextIds.length) };
}

/** A request's row: context then continuation, cut from the left to `context` tokens, the continuation scored. */
export function pairRow(pair: { context: Int32Array; continuation: Int32Array }, contextLength: number): ScoredRow {
  const whole = new Int32Array(pair.context.length + pair.continuation.length);
  whole.set(pair.context);
  whole.set(pair.continuation, pair.context.length);
  const ids = whole.slice(Math.max(0, whole.length - contextLength));
  const scored = new Uint8Array(ids.length);
  scored.fill(1, Math.max(1, ids.length - pair.continuation.length));
  return { ids, scored };
}

export interface TaskRun {
  model: CausalLm;
  vocab: number;
  tokenizer: Tokenizer;
  /** Tokens a row may hold (the model's positions). */
  context: number;
  eosIds: readonly number[];
  score?: ScoreOptions;
}

/** The documents scored and counted. */
export async function tallyTask(task: TaskDocs, run: TaskRun): Promise<TaskTally> {
  const started = performance.now();
  const counts = task.kind === 'multiple-choice' ? await multipleChoice(task.docs, run) : task.kind === 'loglikelihood' ? await loglikelihood(task.docs, run) : await generateUntil(task.docs, run);
  return { kind: task.kind, docs: task.docs.length, correctNorm: 0, logprob: 0, ...counts, seconds: (performance.now() - started) / 1000 };
}

async function multipleChoice(docs: readonly MultipleChoiceDoc[], run: TaskRun): Promise<Pick<TaskTally, 'correct' | 'correctNorm'>> {
  const rows = docs.flatMap((d) => d.choices.map((c) => pairRow(encodePair(run.tokenizer, d.context, d.delimiter + c), run.context)));
  const scores = await scoreRows(run.model, run.vocab, rows, run.score);
  let correct = 0;
  let correctNorm = 0;
  let at = 0;
  for (const d of docs) {
    const lls = scores.slice(at, at + d.choices.length).map((s) => s.logprob);
    at += d.choices.length;
    if (argmax(lls) === d.answer) correct++;
    if (argmax(lls.map((ll, i) => ll / d.choices[i].length)) === d.answer) correctNorm++;
  }
  return { correct, correctNorm };
}

async function loglikelihood(docs: readonly LoglikelihoodDoc[], run: TaskRun): Promise<Pick<TaskTally, 'correct' | 'logprob'>> {
  const scores = await scoreRows(run.model, run.vocab, docs.map((d) => pairRow(encodePair(run.tokenizer, d.context, d.continuation), run.context)), run.score);
  return { correct: scores.filter((s) => s.correct === s.tokens).length, logprob: scores.reduce((sum, s) => sum + s.logprob, 0) };
}

async function generateUntil(docs: readonly GenerateDoc[], run: TaskRun): Promise<Pick<TaskTally, 'correct'>> {
  let correct = 0;
  for (const d of docs) {
    const prompt = d.context === '' ? encodePair(run.tokenizer, '', '').context : run.tokenizer.encode(d.context);
    const room = Math.max(0, Math.min(d.maxTokens, run.context - prompt.length));
    const reply = await generate(run.model, [...prompt], {
      maxNewTokens: room, eosIds: run.eosIds, stopStrings: d.until, decode: (ids) => run.tokenizer.decode(ids), precision: run.score?.precision,
    });
    if (answerOf(reply.text ?? '', d.regex) === d.answer.trim()) correct++;
  }
  return { correct };
}

/** The reply's answer: the regex's first group (or match) where one is given, trimmed. */
export function answerOf(text: string, regex: RegExp | null): string {
  if (!regex) return text.trim();
  const m = regex.exec(text);
  return m ? (m[1] ?? m[0]).trim() : '';
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Shards' tallies of one task added. */
export function addTaskTallies(tallies: readonly TaskTally[]): TaskTally {
  return tallies.reduce((a, t) => ({
    kind: t.kind, docs: a.docs + t.docs, correct: a.correct + t.correct, correctNorm: a.correctNorm + t.correctNorm, logprob: a.logprob + t.logprob, seconds: a.seconds + t.seconds,
  }));
}

/** What lm-eval reports for the task: acc and acc_norm, acc and perplexity, or exact_match. */
export function taskFigures(t: TaskTally): Record<string, number> {
  const share = (n: number): number => (t.docs > 0 ? n / t.docs : NaN);
  if (t.kind === 'multiple-choice') return { acc: share(t.correct), acc_norm: share(t.correctNorm), docs: t.docs };
  if (t.kind === 'loglikelihood') return { acc: share(t.correct), perplexity: Math.exp(-share(t.logprob)), docs: t.docs };
  return { exact_match: share(t.correct), docs: t.docs };
}

/** Only the documents of shard `rank` of `of` (every of-th, from rank). */
export function shardOfTask(task: TaskDocs, rank: number, of: number): TaskDocs {
  return { kind: task.kind, docs: task.docs.filter((_, i) => i % of === rank) } as TaskDocs;
}
