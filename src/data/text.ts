/**
 * A text file as a token dataset (`--dataset text --data-file FILE`): the file is tokenised
 * (tokenizer.ts), the last `validationFraction` of its tokens become the validation (test) split,
 * and each split is cut into non-overlapping windows of contextLength tokens.
 *
 *   language-model: window i holds tokens [i·T, i·T + T) and its labels are the tokens one further on,
 *     [i·T + 1, i·T + T + 1), so every position is scored and the last token of a split is never an input.
 *   masked-lm: window i holds tokens [i·T, i·T + T) masked as in BERT (synthetic_text.ts
 *     `maskTokens`, from Rng.derive(seed, split, i)); the mask token is an extra id, vocabSize.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { Rng } from '../util/rng.js';
import type { TokenDataset, TokenTask } from './dataset.js';
import { DataError } from './errors.js';
import { maskTokens } from './synthetic_text.js';
import { type TokenizerName, makeTokenizer } from './tokenizer.js';

export const TEXT_DEFAULTS = { contextLength: 128, validationFraction: 0.1, maskProbability: 0.15 } as const;

export interface TextOptions {
  file: string;
  tokenizer: TokenizerName;
  task: TokenTask;
  seed: number;
  contextLength?: number;
  validationFraction?: number;
}

export interface TextData {
  train: TokenDataset;
  test: TokenDataset;
  /** Tokens in the whole file. */
  tokens: number;
}

const STREAM = { train: 31, test: 32 } as const;

/** Why `file` cannot be the text to train on (missing, or not a file), or null. */
export function textFileProblem(file: string): DataError | null {
  if (!existsSync(file)) return new DataError(file, 'text file not found (--data-file names a UTF-8 text file to train on)');
  if (!statSync(file).isFile()) return new DataError(file, 'is not a file (--data-file names a UTF-8 text file to train on)');
  return null;
}

export function loadText(o: TextOptions): TextData {
  const T = o.contextLength ?? TEXT_DEFAULTS.contextLength;
  const fraction = o.validationFraction ?? TEXT_DEFAULTS.validationFraction;
  const unreadable = textFileProblem(o.file);
  if (unreadable) throw unreadable;
  const tokenizer = makeTokenizer(o.tokenizer);
  const ids = tokenizer.encode(readFileSync(o.file, 'utf8'));
  const lm = o.task === 'language-model';
  // A language-model window needs one token more than it holds (the last label).
  const span = lm ? T + 1 : T;
  const validation = Math.max(span, Math.round(ids.length * fraction));
  if (ids.length - validation < span) {
    throw new DataError(o.file, `has ${ids.length} ${o.tokenizer} tokens; at context ${T} it needs at least ${2 * span} (one training and one validation window)`);
  }
  const vocabSize = tokenizer.vocabSize + (lm ? 0 : 1);
  const build = (part: Int32Array, split: 'train' | 'test'): TokenDataset => {
    const windows = Math.floor((part.length - (lm ? 1 : 0)) / T);
    const inputs = new Int32Array(windows * T);
    const labels = new Int32Array(windows * T);
    for (let i = 0; i < windows; i++) {
      const x = inputs.subarray(i * T, (i + 1) * T);
      const y = labels.subarray(i * T, (i + 1) * T);
      const tokens = part.subarray(i * T, i * T + T);
      if (lm) {
        x.set(tokens);
        y.set(part.subarray(i * T + 1, i * T + T + 1));
      } else {
        maskTokens(Rng.derive(o.seed, STREAM[split], i), tokens, x, y, tokenizer.vocabSize, TEXT_DEFAULTS.maskProbability);
      }
    }
    return {
      task: o.task, name: `text-${split}`, size: windows, inputShape: [T], inputs, labels, vocabSize,
      ...(lm ? {} : { maskToken: tokenizer.vocabSize }),
    };
  };
  return { train: build(ids.subarray(0, ids.length - validation), 'train'), test: build(ids.subarray(ids.length - validation), 'test'), tokens: ids.length };
}
