/**
 * Which models can train on which datasets, checked before anything starts: each model family
 * declares the inputs it takes (nn/models/names.ts inputsOf), each dataset here the inputs it gives.
 * Without this check an MLP on a token dataset died deep in the loss ("expected 32 labels, got 2048").
 */
import { type InputKind, MODEL_NAMES, type ModelType, inputsOf } from '../nn/models/names.js';
import { DATASET_NAMES } from './spellings.js';

export type DatasetName = (typeof DATASET_NAMES)[number];

/** What each dataset's samples are (docs/DATA.md). */
export const DATASET_GIVES: Record<DatasetName, InputKind> = {
  mnist: 'images',
  cifar10: 'images',
  synthetic_image: 'images',
  'synthetic-regression': 'vectors',
  synthetic_text: 'tokens',
  text: 'tokens',
};

/** Why `model` cannot train on `dataset` (one sentence naming both and what would fit), or null. */
export function modelDatasetMismatch(model: ModelType, dataset: DatasetName): string | null {
  const gives = DATASET_GIVES[dataset];
  const takes = inputsOf(model);
  if (takes.includes(gives)) return null;
  const fitting = MODEL_NAMES.filter((m) => inputsOf(m).includes(gives) && m !== 'cnn');
  const datasets = DATASET_NAMES.filter((d) => takes.includes(DATASET_GIVES[d]));
  return `model ${model} takes ${takes.join(' or ')}, but dataset ${dataset} gives ${gives}: ` +
    `for ${dataset} use a model of ${fitting.join(', ')}; for ${model} a dataset of ${datasets.join(', ')}`;
}
