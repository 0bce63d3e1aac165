/**
 * One model's evaluation (`smolcluster eval`, docs/EVAL.md): a data file's loss, perplexity and
 * token accuracy (perplexity.ts) and task files' scores (tasks.ts), as sums that shards add — a
 * shard (rank r of N) scores every N-th window, example or document from r — then as figures.
 */
import { looksLikeChat } from '../data/chat_examples.js';
import { corpusFiles } from '../data/corpus_files.js';
import { DataError } from '../data/errors.js';
import { cachedTokens, defaultTokenCacheDir, tokenCachePath } from '../data/token_cache.js';
import { chatFormatOf } from '../generate/chat_template.js';
import type { Generator } from '../generate/load_generator.js';
import type { Precision } from '../tensor/precision.js';
import { type FileFigures, type Tally, addTallies, chatRows, fileFigures, strideWindows, streamRows, tallyRows } from './perplexity.js';
import { type TaskTally, addTaskTallies, readTask, shardOfTask, tallyTask, taskFigures } from './tasks.js';
import type { ScoredRow } from './token_scores.js';

export interface EvalRequest {
  /** --data-file: text, JSONL (a text field, or chat examples), Parquet. */
  dataFile?: string;
  /** JSONL and Parquet: the field holding a document's text (default `text`). */
  textField?: string;
  /** --task files. */
  tasks?: readonly string[];
  /** Tokens per window (default: the model's positions, at most DEFAULT_CONTEXT). */
  context?: number;
  /** Tokens between windows' starts (default: the context: windows do not overlap). */
  stride?: number;
  /** Rows per forward at most. */
  batchRows?: number;
  precision?: Precision;
  /** This process's share: rank r of N. */
  shard?: { rank: number; of: number };
}

/** A model's sums over everything asked: what a shard prints and its driver adds. */
export interface EvalTallies {
  data?: { file: string; kind: 'text' | 'chat'; tally: Tally };
  tasks: { file: string; tally: TaskTally }[];
}

export interface EvalFigures {
  data?: { file: string; kind: 'text' | 'chat' } & FileFigures;
  tasks: ({ file: string; kind: string } & Record<string, number | string>)[];
}

/** lm-eval's default max_length; a model of more positions is read in windows of this many unless --context says otherwise. */
export const DEFAULT_CONTEXT = 2048;

export function contextFor(g: Pick<Generator, 'spec'>, asked: number | undefined): number {
  if (asked !== undefined && asked > g.spec.context) throw new DataError('--context', `${asked} is more than the model's ${g.spec.context} positions`);
  if (asked !== undefined && asked < 2) throw new DataError('--context', 'must be at least 2 (a token and the one it predicts)');
  return asked ?? Math.min(g.spec.context, DEFAULT_CONTEXT);
}

/** The sums of everything `r` asks, over this process's shard. */
export async function evaluateTallies(g: Generator, r: EvalRequest): Promise<EvalTallies> {
  const context = contextFor(g, r.context);
  const { rank, of } = r.shard ?? { rank: 0, of: 1 };
  const score = { precision: r.precision, batchRows: r.batchRows };
  const out: EvalTallies = { tasks: [] };
  if (r.dataFile !== undefined) {
    const mine = (_: unknown, i: number): boolean => i % of === rank;
    const { kind, rows } = dataRows(g, r.dataFile, { context, stride: r.stride ?? context, textField: r.textField ?? 'text', mine });
    out.data = { file: r.dataFile, kind, tally: await tallyRows(g.model, g.spec.vocabSize, rows, score) };
  }
  for (const file of r.tasks ?? []) {
    const task = shardOfTask(readTask(file), rank, of);
    out.tasks.push({ file, tally: await tallyTask(task, { model: g.model, vocab: g.spec.vocabSize, tokenizer: g.tokenizer, context, eosIds: g.eosIds, score }) });
  }
  return out;
}

interface RowPlan {
  context: number;
  stride: number;
  textField: string;
  /** Whether this shard scores the i-th window or example. */
  mine: (row: unknown, i: number) => boolean;
}

/** The shard's rows of the file: chat examples (learned tokens scored) or windows over its token stream. */
function dataRows(g: Generator, file: string, { context, stride, textField, mine }: RowPlan): { kind: 'text' | 'chat'; rows: ScoredRow[] } {
  if (looksLikeChat(file)) return { kind: 'chat', rows: chatRows(file, g.chatTemplate && chatFormatOf(g.chatTemplate), g.tokenizer, context).filter(mine) };
  const documents = { textField, eosText: g.tokenizer.eosText };
  const files = corpusFiles(file);
  const tokens = cachedTokens(tokenCachePath(defaultTokenCacheDir(), files, g.tokenizer, documents), files, g.tokenizer, documents);
  try {
    if (tokens.tokens < 2) throw new DataError(file, `has ${tokens.tokens} token: nothing to predict`);
    return { kind: 'text', rows: streamRows(tokens, strideWindows(tokens.tokens, context, stride).filter(mine)) };
  } finally {
    tokens.close();
  }
}

/** Shards' tallies added (each shard asked the same). */
export function addEvalTallies(shards: readonly EvalTallies[]): EvalTallies {
  const [first] = shards;
  return {
    data: first.data && { ...first.data, tally: addTallies(shards.map((s) => s.data!.tally)) },
    tasks: first.tasks.map((t, i) => ({ file: t.file, tally: addTaskTallies(shards.map((s) => s.tasks[i].tally)) })),
  };
}

export function evalFigures(t: EvalTallies): EvalFigures {
  return {
    data: t.data && { file: t.data.file, kind: t.data.kind, ...fileFigures(t.data.tally) },
    tasks: t.tasks.map((task) => ({ file: task.file, kind: task.tally.kind, ...taskFigures(task.tally) })),
  };
}
