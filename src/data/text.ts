/**
 * Text as a token dataset (`--dataset text --data-file FILE|FOLDER|GLOB`): the documents of the
 * files (documents.ts: text, JSONL, Parquet) are tokenised into a token file (token_cache.ts; built
 * once, reused by later runs), each framed as its tokenizer frames a document (tokenizer.ts: an EOS
 * after each, a BOS before each where the family's post-processor adds one), and cut into windows
 * of contextLength tokens read from that file on demand (text_windows.ts).
 *
 * Validation: `validationFile` (--val-file) is a corpus of its own; otherwise the last
 * `validationFraction` (--val-fraction, default 10 %) of the documents, whole documents so none is
 * seen in both splits. A corpus of one document (a single text file) is split by tokens instead:
 * its last fraction of tokens.
 */
import { basename } from 'node:path';
import type { StreamedTokenDataset, TokenTask } from './dataset.js';
import { corpusFiles } from './corpus_files.js';
import { DataError } from './errors.js';
import { type TokenFile, cachedTokens, defaultTokenCacheDir, tokenCachePath } from './token_cache.js';
import { isNamedTokenizer, makeTokenizer } from './tokenizer.js';
import { tokenWindows, windowSpan } from './text_windows.js';

export const TEXT_DEFAULTS = { contextLength: 128, validationFraction: 0.1, textField: 'text' } as const;

export interface TextOptions {
  /** --data-file: a text, JSONL or Parquet file, a folder of them, or a glob. */
  file: string;
  /** `gpt2`, `bytes`, or a tokenizer.json (or the folder holding one). */
  tokenizer: string;
  task: TokenTask;
  seed: number;
  contextLength?: number;
  /** The share of documents held out for validation (default 0.1); not with validationFile. */
  validationFraction?: number;
  /** --val-file: the validation corpus (file, folder or glob); the whole of `file` then trains. */
  validationFile?: string;
  /** JSONL and Parquet: the field holding each document's text (default `text`). */
  textField?: string;
  /** Where token files are kept (default: token_cache.ts `defaultTokenCacheDir`). */
  cacheDir?: string;
}

export interface TextData {
  train: StreamedTokenDataset;
  test: StreamedTokenDataset;
  /** Tokens of the training corpus (with --val-file) or of the whole corpus. */
  tokens: number;
  /** Documents in the training and validation splits. */
  documents: { train: number; test: number };
  /** The token files read (the second is --val-file's). */
  cache: string[];
}

const STREAM = { train: 31, test: 32 } as const;

/** Why `file` cannot be the text to train on (nothing found there), or null. */
export function textFileProblem(file: string): DataError | null {
  try {
    corpusFiles(file);
    return null;
  } catch (e) {
    if (e instanceof DataError) return e;
    throw e;
  }
}

export function loadText(o: TextOptions): TextData {
  const T = o.contextLength ?? TEXT_DEFAULTS.contextLength;
  if (o.validationFile !== undefined && o.validationFraction !== undefined) {
    throw new DataError('--val-file', 'and --val-fraction both choose the validation split: give one');
  }
  const fraction = o.validationFraction ?? TEXT_DEFAULTS.validationFraction;
  if (!(fraction > 0 && fraction < 1)) throw new DataError('--val-fraction', `must be between 0 and 1 (exclusive), got ${fraction}`);
  const tokenizer = makeTokenizer(o.tokenizer);
  const documents = { textField: o.textField ?? TEXT_DEFAULTS.textField, eosText: tokenizer.eosText };
  const dir = o.cacheDir ?? defaultTokenCacheDir();
  const open = (spec: string): TokenFile => {
    const files = corpusFiles(spec);
    return cachedTokens(tokenCachePath(dir, files, tokenizer, documents), files, tokenizer, documents);
  };
  const label = isNamedTokenizer(o.tokenizer) ? o.tokenizer : basename(tokenizer.name);
  const span = windowSpan(T, o.task);
  const corpus = open(o.file);
  const windows = (tokens: TokenFile, lo: number, hi: number, split: 'train' | 'test'): StreamedTokenDataset =>
    tokenWindows({ tokens, lo, hi, contextLength: T, task: o.task, name: `text-${split}`, seed: o.seed, stream: STREAM[split] });

  if (o.validationFile !== undefined) {
    const val = open(o.validationFile);
    need(o.file, corpus.tokens, span, T, label, 'training corpus');
    need(o.validationFile, val.tokens, span, T, label, 'validation corpus (--val-file)');
    return {
      train: windows(corpus, 0, corpus.tokens, 'train'), test: windows(val, 0, val.tokens, 'test'),
      tokens: corpus.tokens, documents: { train: corpus.documents, test: val.documents }, cache: [corpus.path, val.path],
    };
  }
  const { boundary, heldOut } = validationStart(corpus, fraction, span);
  if (heldOut === 0) {
    if (corpus.tokens - boundary < span || boundary < span) {
      throw new DataError(o.file, `has ${corpus.tokens} ${label} tokens; at context ${T} it needs at least ${2 * span} (one training and one validation window)`);
    }
  } else {
    need(o.file, boundary, span, T, label, `training split (the first ${corpus.documents - heldOut} of ${corpus.documents} documents)`);
    need(o.file, corpus.tokens - boundary, span, T, label, `validation split (the last ${heldOut} of ${corpus.documents} documents; --val-fraction ${fraction})`);
  }
  return {
    train: windows(corpus, 0, boundary, 'train'), test: windows(corpus, boundary, corpus.tokens, 'test'), tokens: corpus.tokens,
    documents: heldOut === 0 ? { train: 1, test: 1 } : { train: corpus.documents - heldOut, test: heldOut }, cache: [corpus.path],
  };
}

/**
 * Where validation starts: at the first of the last round(fraction · documents) documents (at least
 * one, never all), or, for a corpus of one document, at its last round(fraction · tokens) tokens
 * (at least one window's worth); `heldOut` counts the documents (0: split by tokens).
 */
export function validationStart(corpus: Pick<TokenFile, 'tokens' | 'docStarts'>, fraction: number, span: number): { boundary: number; heldOut: number } {
  const docs = corpus.docStarts.length;
  if (docs < 2) return { boundary: corpus.tokens - Math.max(span, Math.round(corpus.tokens * fraction)), heldOut: 0 };
  const heldOut = Math.min(docs - 1, Math.max(1, Math.round(docs * fraction)));
  return { boundary: corpus.docStarts[docs - heldOut], heldOut };
}

function need(file: string, tokens: number, span: number, T: number, label: string, what: string): void {
  if (tokens < span) {
    throw new DataError(file, `the ${what} has ${tokens} ${label} tokens; at context ${T} it needs at least ${span} (one window)`);
  }
}
