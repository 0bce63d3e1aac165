/**
 * Chat fine-tuning data as a language-model token dataset (`--dataset text --data-file chat.jsonl
 * --chat`, or any JSONL whose first record has `messages` or `prompt`/`completion`): each example
 * (chat_examples.ts) rendered and tokenized as TRL's SFTTrainer does (chat_tokens.ts), the label of
 * a position its next token where that token is learned and PyTorch's ignore label -100 elsewhere,
 * so the loss is over the assistant's tokens only.
 *
 * One conversation per window, padded: a window holds one example's first `contextLength` tokens
 * (longer ones are cut, TRL's truncation_mode keep_start) and pad tokens after it whose labels are
 * -100. Causal attention keeps the pads out of every real position, so each conversation sees only
 * itself, as TRL's padded batches give. With `packing` (--packing, TRL's packing=True) several
 * conversations share a window, each with its own positions and attending only to itself
 * (chat_packing.ts); the window length defaults the same way.
 *
 * Validation: `validationFile` (--val-file, another chat JSONL), else the last `validationFraction`
 * of the examples (at least one, never all).
 */
import { readChatExamples } from './chat_examples.js';
import { packedChatWindows } from './chat_packing.js';
import { type ChatFormat, type ChatTokens, chatTokens } from './chat_tokens.js';
import { IGNORE_INDEX, type TokenDataset } from './dataset.js';
import { DataError } from './errors.js';
import type { Tokenizer } from './tokenizer.js';

/** TRL's default max_length: the longest window a chat example gets when no --context is given. */
export const CHAT_MAX_CONTEXT = 1024;

export interface ChatDataOptions {
  file: string;
  tokenizer: Tokenizer;
  /** The tokenizer's chat template (null: only plain prompt/completion examples can be read). */
  format: ChatFormat | null;
  /** Tokens per window (default: the longest example's, at most CHAT_MAX_CONTEXT). */
  contextLength?: number;
  validationFile?: string;
  validationFraction?: number;
  /** Several conversations per window (chat_packing.ts), in both splits. */
  packing?: boolean;
}

export interface ChatData {
  train: TokenDataset;
  test: TokenDataset;
  /** Examples in each split. */
  documents: { train: number; test: number };
  /** Examples cut to the window, in both splits. */
  truncated: number;
  /** Tokens whose loss is learned (labels other than -100), in the training split. */
  learnedTokens: number;
}

export function loadChat(o: ChatDataOptions): ChatData {
  const encode = (file: string): ChatTokens[] => readChatExamples(file).map((e, i) => chatTokens(e, o.format, o.tokenizer, `${file}: example ${i + 1}`));
  let train = encode(o.file);
  let test: ChatTokens[];
  if (o.validationFile !== undefined) {
    if (o.validationFraction !== undefined) throw new DataError('--val-file', 'and --val-fraction both choose the validation split: give one');
    test = encode(o.validationFile);
  } else {
    const fraction = o.validationFraction ?? 0.1;
    if (!(fraction > 0 && fraction < 1)) throw new DataError('--val-fraction', `must be between 0 and 1 (exclusive), got ${fraction}`);
    if (train.length < 2) throw new DataError(o.file, `has ${train.length} example; a validation split needs at least 2 (or give --val-file)`);
    const held = Math.min(train.length - 1, Math.max(1, Math.round(train.length * fraction)));
    test = train.slice(train.length - held);
    train = train.slice(0, train.length - held);
  }
  const T = o.contextLength ?? Math.min(CHAT_MAX_CONTEXT, Math.max(...train.map((c) => c.ids.length), ...test.map((c) => c.ids.length)));
  const pad = o.tokenizer.eos ?? 0;
  const windows = o.packing ? packedChatWindows : chatWindows;
  const trainSet = windows(train, T, pad, o.tokenizer.vocabSize, 'chat-train');
  return {
    train: trainSet,
    test: windows(test, T, pad, o.tokenizer.vocabSize, 'chat-test'),
    documents: { train: train.length, test: test.length },
    truncated: [...train, ...test].filter((c) => c.ids.length > T).length,
    learnedTokens: trainSet.labels.reduce((n, l) => n + (l === IGNORE_INDEX ? 0 : 1), 0),
  };
}

/**
 * One window of T tokens per example: its first T ids then `pad`; label t is id t + 1 where that
 * token is learned, IGNORE_INDEX elsewhere (prompt, pads, the cut end).
 */
export function chatWindows(examples: readonly ChatTokens[], T: number, pad: number, vocabSize: number, name: string): TokenDataset {
  const inputs = new Int32Array(examples.length * T).fill(pad);
  const labels = new Int32Array(examples.length * T).fill(IGNORE_INDEX);
  examples.forEach((c, i) => {
    const n = Math.min(T, c.ids.length);
    inputs.set(c.ids.subarray(0, n), i * T);
    for (let t = 0; t + 1 < n; t++) if (c.learned[t + 1]) labels[i * T + t] = c.ids[t + 1];
  });
  return { task: 'language-model', name, size: examples.length, inputShape: [T], inputs, labels, vocabSize };
}
