/**
 * The loss, perplexity and token accuracy of a model over a file (`smolcluster eval --data-file`).
 *
 *   - Text, JSONL with a text field, Parquet: the documents as training packs them (data/text.ts:
 *     each framed by the tokenizer, back to back) are one stream of tokens, read in windows of
 *     `context` tokens that start every `stride` tokens, as transformers' perplexity guide
 *     ("Perplexity of fixed-length models") does: a window scores only the tokens no earlier window
 *     scored, so with stride < context each is predicted from at least context − stride tokens
 *     before it; with stride = context (the default) the windows do not overlap and each window's
 *     first token goes unscored, as in the guide.
 *   - Chat JSONL: each example as training renders and masks it (data/chat_tokens.ts): its first
 *     `context` tokens, the assistant's (learned) tokens scored.
 *
 * The figures are sums first (Tally), so a file split over processes adds up to the same figures.
 */
import { readChatExamples } from '../data/chat_examples.js';
import { type ChatFormat, chatTokens } from '../data/chat_tokens.js';
import { DataError } from '../data/errors.js';
import type { TokenFile } from '../data/token_cache.js';
import type { CausalLm } from '../generate/generate.js';
import { type RowScore, type ScoreOptions, type ScoredRow, scoreRows } from './token_scores.js';

/** Summed figures of scored tokens: what shards add. */
export interface Tally {
  /** Sum of the scored tokens' negative log-likelihoods (nats). */
  nll: number;
  tokens: number;
  correct: number;
  /** Seconds spent scoring (a shard's own). */
  seconds: number;
}

export interface FileFigures {
  /** Mean negative log-likelihood per scored token (nats): the training loss's definition. */
  loss: number;
  perplexity: number;
  /** Share of scored tokens that were the most likely token. */
  tokenAccuracy: number;
  tokens: number;
  /** Scored tokens per second of scoring (over every shard's seconds together: per process). */
  tokensPerSecond: number;
}

/** The window [begin, end) of a stream and the first token it scores. */
export interface StreamWindow {
  begin: number;
  end: number;
  scoreFrom: number;
}

/** transformers' strided windows over `tokens` tokens: each scores the tokens after the one before's end. */
export function strideWindows(tokens: number, context: number, stride: number): StreamWindow[] {
  if (stride > context) throw new DataError('--stride', `${stride} is more than the context, ${context}: tokens between windows would go unscored`);
  const windows: StreamWindow[] = [];
  let scoredUpTo = 0;
  for (let begin = 0; begin < tokens; begin += stride) {
    const end = Math.min(begin + context, tokens);
    windows.push({ begin, end, scoreFrom: Math.max(scoredUpTo, begin + 1) });
    scoredUpTo = end;
    if (end === tokens) break;
  }
  return windows;
}

/** The rows of a token file's windows (those of `shard`). */
export function streamRows(file: TokenFile, windows: readonly StreamWindow[]): ScoredRow[] {
  return windows.map((w) => {
    const ids = new Int32Array(w.end - w.begin);
    file.read(w.begin, ids);
    const scored = new Uint8Array(ids.length);
    scored.fill(1, w.scoreFrom - w.begin);
    return { ids, scored };
  });
}

/** A chat JSONL file's examples as rows, the learned tokens of each one's first `context` tokens scored. */
export function chatRows(file: string, format: ChatFormat | null, tokenizer: Parameters<typeof chatTokens>[2], context: number): ScoredRow[] {
  return readChatExamples(file).map((example, i) => {
    const { ids, learned } = chatTokens(example, format, tokenizer, `${file}: example ${i + 1}`);
    return { ids: ids.slice(0, context), scored: learned.slice(0, context) };
  });
}

/** The rows scored and summed. */
export async function tallyRows(model: CausalLm, vocab: number, rows: readonly ScoredRow[], o: ScoreOptions = {}): Promise<Tally> {
  const started = performance.now();
  const scores = await scoreRows(model, vocab, rows, o);
  return { ...sumScores(scores), seconds: (performance.now() - started) / 1000 };
}

function sumScores(scores: readonly RowScore[]): Omit<Tally, 'seconds'> {
  let nll = 0;
  let tokens = 0;
  let correct = 0;
  for (const s of scores) {
    nll -= s.logprob;
    tokens += s.tokens;
    correct += s.correct;
  }
  return { nll, tokens, correct };
}

/** Shards' tallies added. */
export function addTallies(tallies: readonly Tally[]): Tally {
  return tallies.reduce((a, t) => ({ nll: a.nll + t.nll, tokens: a.tokens + t.tokens, correct: a.correct + t.correct, seconds: a.seconds + t.seconds }), { nll: 0, tokens: 0, correct: 0, seconds: 0 });
}

export function fileFigures(t: Tally): FileFigures {
  const loss = t.tokens > 0 ? t.nll / t.tokens : NaN;
  return {
    loss, perplexity: Math.exp(loss), tokenAccuracy: t.tokens > 0 ? t.correct / t.tokens : NaN, tokens: t.tokens,
    tokensPerSecond: t.seconds > 0 ? t.tokens / t.seconds : NaN,
  };
}
