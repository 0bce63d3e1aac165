/**
 * What both sides of bench:grpo read: a tokenizer.json that our loader and transformers'
 * PreTrainedTokenizerFast both read to the same ids, and the prompts in the order our run's steps
 * take them (so TRL, its shuffling off, samples the same prompts at the same step).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PromptOrder } from '../../src/rl/grpo_run.js';
import { type TaskRow, additionDigits, additionTask } from '../../src/rl/tasks/addition.js';

/**
 * A byte-level BPE tokenizer.json without merges over a vocabulary of `vocabSize` ids: ids 0–255
 * are the 256 bytes (GPT-2's byte-to-character table), ids 256 and up stand-ins named `t<id>` that
 * encoding never produces but decoding prints (a random model samples them). No special tokens: no
 * BOS is put before a prompt and no end token stops a completion.
 */
export function standInTokenizer(vocabSize: number): object {
  if (!Number.isInteger(vocabSize) || vocabSize < 256) throw new RangeError(`a byte-level tokenizer needs a vocabulary of at least 256 ids, got ${vocabSize}`);
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[String.fromCharCode(printable(b) ? b : next++)] = b;
  for (let id = 256; id < vocabSize; id++) vocab[`t${id}`] = id;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: byteLevel, post_processor: byteLevel, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
}

/** Writes standInTokenizer(vocabSize) as `dir`/tokenizer.json; returns its path. */
export function writeStandInTokenizer(dir: string, vocabSize: number): string {
  const path = join(dir, 'tokenizer.json');
  writeFileSync(path, JSON.stringify(standInTokenizer(vocabSize)));
  return path;
}

/**
 * The prompts `smolcluster grpo --task TASK --task-size SIZE --seed SEED` trains on in its first
 * `steps` steps of `perStep` prompts, in order: the task's training split in grpo_run's PromptOrder.
 */
export function stepPrompts(task: string, size: number, seed: number, steps: number, perStep: number): TaskRow[] {
  const { train } = additionTask(additionDigits(task), size, 0, seed);
  const order = new PromptOrder(train.length, seed);
  return Array.from({ length: steps }, () => order.next(perStep).map((i) => train[i])).flat();
}
