import type { ModelType } from '../nn/models/index.js';
import type { OptimizerName } from '../nn/optim/index.js';
import type { ScheduleName } from '../nn/optim/schedule.js';

export const DATASETS = ['mnist', 'synthetic-regression', 'synthetic_image', 'synthetic_text', 'cifar10', 'text'] as const;
export type DatasetName = (typeof DATASETS)[number];

/** Everything that determines a training run. Written into result.json as `config`. */
export interface TrainConfig {
  model: ModelType;
  /** MLP hidden widths (SmolCluster's `hidden`). */
  hidden: number[];
  /** MNIST, the seeded synthetic sets, CIFAR-10 or a text file (run.ts `loadTrainData`; docs/DATA.md). */
  dataset: DatasetName;
  dataDir?: string;
  /** cifar10: random crop (pad 4) + horizontal flip of the training images, drawn from the seed. */
  augment?: boolean;
  /** text: the file to train on and its tokenizer (default gpt2). */
  dataFile?: string;
  tokenizer?: 'gpt2' | 'bytes';
  /** Tokens per sequence of a token dataset (the model's context; default: the dataset's). */
  context?: number;
  epochs: number;
  /** Per process (per worker), as in torch DDP; with gradAccum K, the size of each micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step (--grad-accum; default 1): a step sees batchSize × gradAccum samples per process. */
  gradAccum?: number;
  lr: number;
  optimizer: OptimizerName;
  momentum: number;
  weightDecay: number;
  schedule: ScheduleName;
  warmupSteps: number;
  /** Global-norm gradient clipping; 0 disables. */
  clipGradNorm: number;
  seed: number;
  /** Evaluate on the test set every N steps (0: only at the end). */
  evalEvery: number;
  evalBatchSize: number;
  /** Record per-layer and global gradient norms every step (SmolCluster's `track_gradients`). */
  trackGradients: boolean;
  /** Stop after this many steps (0: run all epochs). */
  maxSteps: number;
  threads: number;
}

/** Defaults chosen so the quick start reaches the documented accuracy (README). */
export const DEFAULTS: Record<ModelType, Partial<TrainConfig>> = {
  mlp: { epochs: 2, batchSize: 32, lr: 0.02, optimizer: 'sgd', momentum: 0.9, schedule: 'cosine' },
  cnn: { epochs: 1, batchSize: 32, lr: 0.02, optimizer: 'sgd', momentum: 0.9, schedule: 'cosine' },
};

export function defaultConfig(model: ModelType): TrainConfig {
  return {
    model,
    hidden: [128],
    dataset: 'mnist',
    epochs: 2,
    batchSize: 32,
    lr: 0.02,
    optimizer: 'sgd',
    momentum: 0.9,
    weightDecay: 0,
    schedule: 'cosine',
    warmupSteps: 0,
    clipGradNorm: 0,
    seed: 0,
    evalEvery: 0,
    evalBatchSize: 1000,
    trackGradients: false,
    maxSteps: 0,
    threads: 0,
    ...DEFAULTS[model],
  };
}
