/**
 * The guide's datasets by name (`--dataset synthetic_image|synthetic_text|cifar10|text`): the
 * training and test sets for a run. MNIST and the synthetic regression set are loaded beside this
 * (train/run/run.ts), as before.
 */
import { loadCifar10 } from './cifar10.js';
import type { Dataset, TokenTask } from './dataset.js';
import { DataError } from './errors.js';
import { syntheticImage } from './synthetic_image.js';
import { syntheticText } from './synthetic_text.js';
import { loadChat } from './chat.js';
import { looksLikeChat } from './chat_examples.js';
import type { ChatFormat } from './chat_tokens.js';
import { loadText, textFileProblem } from './text.js';
import { makeTokenizer } from './tokenizer.js';

export const GUIDE_DATASETS = ['synthetic_image', 'synthetic_text', 'cifar10', 'text'] as const;
export type GuideDatasetName = (typeof GUIDE_DATASETS)[number];

/**
 * Split sizes. 3840 divides by 1–6, 8, 10, 12, 15 and 16, so N workers at batch B see exactly the
 * global batches of one process at batch N·B for those N.
 */
export const DATASET_SIZES = {
  synthetic_image: { train: 3840, test: 768 },
  synthetic_text: { train: 3840, test: 384 },
} as const;

export interface DatasetRequest {
  name: GuideDatasetName;
  seed: number;
  /** What a token dataset is for: next-token prediction (GPT-2) or masked tokens (BERT). */
  tokenTask: TokenTask;
  /** Tokens per sequence of a token dataset (default: the dataset's own). */
  contextLength?: number;
  /** cifar10: the directory with the binary batches. */
  dataDir?: string;
  /** Image sets: random crop (pad 4) + horizontal flip of training samples (cifar10). */
  augment?: boolean;
  /** text: the file, folder or glob to train on, and how to tokenise it (default gpt2; text.ts). */
  dataFile?: string;
  /** `gpt2`, `bytes`, or a tokenizer.json (or a model folder holding one). */
  tokenizer?: string;
  /** text: the validation corpus (--val-file), or the share of documents held out (--val-fraction). */
  validationFile?: string;
  validationFraction?: number;
  /** text: the JSONL / Parquet field holding the text (--text-field; default `text`). */
  textField?: string;
  /** text: the file is chat JSONL (--chat; found by itself from its first record too). */
  chat?: boolean;
  /** Chat data packed several conversations to a window (--packing; chat_packing.ts). */
  packing?: boolean;
  /** The tokenizer's chat template, asked for only when the data is chat (train/run/chat_format.ts). */
  chatFormat?: () => ChatFormat | null;
}

/**
 * What is wrong with the files a dataset is read from (text: --data-file not given, or naming no
 * file), or null; cheap, so checked before anything starts too.
 */
export function dataFileProblem(req: { name: string; dataFile?: string }): DataError | null {
  if (req.name !== 'text') return null;
  return req.dataFile ? textFileProblem(req.dataFile) : new DataError('--data-file', '--dataset text needs --data-file FILE (a text, JSONL or Parquet file, a folder of them, or a glob)');
}

export function loadDataset(req: DatasetRequest): { train: Dataset; test: Dataset } {
  switch (req.name) {
    case 'text': {
      if (!req.dataFile) throw dataFileProblem(req)!;
      if (req.chat || looksLikeChat(req.dataFile)) {
        if (req.tokenTask !== 'language-model') throw new DataError('--chat', 'chat data trains a next-token model (gpt2 or the Llama family), not masked tokens');
        return loadChat({
          file: req.dataFile, tokenizer: makeTokenizer(req.tokenizer ?? 'gpt2'), format: req.chatFormat?.() ?? null, contextLength: req.contextLength,
          validationFile: req.validationFile, validationFraction: req.validationFraction, packing: req.packing,
        });
      }
      if (req.packing) throw new DataError('--packing', `packs chat data (JSONL with "messages", or "prompt" and "completion"); ${req.dataFile} is not chat (add --chat if it is)`);
      return loadText({
        file: req.dataFile, tokenizer: req.tokenizer ?? 'gpt2', task: req.tokenTask, seed: req.seed, contextLength: req.contextLength,
        validationFile: req.validationFile, validationFraction: req.validationFraction, textField: req.textField,
      });
    }
    case 'cifar10':
      return loadCifar10({ dataDir: req.dataDir, augment: req.augment, seed: req.seed });
    case 'synthetic_image': {
      const n = DATASET_SIZES.synthetic_image;
      return {
        train: syntheticImage({ seed: req.seed, samples: n.train, split: 'train' }),
        test: syntheticImage({ seed: req.seed, samples: n.test, split: 'test' }),
      };
    }
    case 'synthetic_text': {
      const n = DATASET_SIZES.synthetic_text;
      // An absent --context keeps the generator's default length (an explicit undefined would replace it).
      const common = { seed: req.seed, task: req.tokenTask, ...(req.contextLength === undefined ? {} : { contextLength: req.contextLength }) };
      return { train: syntheticText({ ...common, samples: n.train, split: 'train' }), test: syntheticText({ ...common, samples: n.test, split: 'test' }) };
    }
  }
}
