/**
 * Fixed windows over a range of a token file, read on demand (one window per sample, never the
 * whole range in memory). Documents are already packed back to back with their separators, so a
 * window may hold the end of one document and the start of the next, as in GPT-2's and nanoGPT's
 * training.
 *
 *   language-model: window i holds tokens [lo + i·T, lo + i·T + T) and its labels the tokens one
 *     further on, so every position is scored and the range's last token is never an input.
 *   masked-lm: window i holds tokens [lo + i·T, lo + i·T + T) masked as in BERT (synthetic_text.ts
 *     `maskTokens`, from Rng.derive(seed, stream, i)); the mask token is an extra id, vocabSize.
 */
import { Rng } from '../util/rng.js';
import type { StreamedTokenDataset, TokenTask } from './dataset.js';
import { maskTokens } from './synthetic_text.js';
import type { TokenFile } from './token_cache.js';

export const MASK_PROBABILITY = 0.15;

export interface WindowRange {
  tokens: TokenFile;
  /** Token range [lo, hi) of the file the windows cover. */
  lo: number;
  hi: number;
  contextLength: number;
  task: TokenTask;
  name: string;
  /** masked-lm: the masks' seed and random stream. */
  seed: number;
  stream: number;
}

/** Tokens a window reads: one more than it holds for the next-token labels. */
export function windowSpan(contextLength: number, task: TokenTask): number {
  return task === 'language-model' ? contextLength + 1 : contextLength;
}

/** Windows that fit in `tokens` tokens. */
export function windowCount(tokens: number, contextLength: number, task: TokenTask): number {
  return Math.max(0, Math.floor((tokens - (task === 'language-model' ? 1 : 0)) / contextLength));
}

export function tokenWindows(r: WindowRange): StreamedTokenDataset {
  const T = r.contextLength;
  const lm = r.task === 'language-model';
  const vocab = r.tokens.vocabSize;
  const span = new Int32Array(windowSpan(T, r.task));
  const size = windowCount(r.hi - r.lo, T, r.task);
  return {
    task: r.task, name: r.name, size, inputShape: [T], vocabSize: vocab + (lm ? 0 : 1),
    ...(lm ? {} : { maskToken: vocab }),
    windows: {
      read(index, inputs, labels) {
        if (!(index >= 0 && index < size)) throw new RangeError(`${r.name}: window ${index} outside its ${size}`);
        r.tokens.read(r.lo + index * T, span);
        if (lm) {
          inputs.set(span.subarray(0, T));
          labels.set(span.subarray(1, T + 1));
        } else {
          maskTokens(Rng.derive(r.seed, r.stream, index), span, inputs, labels, vocab, MASK_PROBABILITY);
        }
      },
    },
  };
}
