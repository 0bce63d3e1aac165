import { type ModelType, isTokenModel } from '../../nn/models/index.js';
import type { OptimizerName } from '../../nn/optim/index.js';
import type { LoraBaseDtype } from '../../config/options/lora.js';
import type { ScheduleName } from '../../nn/optim/schedule.js';
import { DATASET_NAMES } from '../../config/spellings.js';
import type { PrecisionChoice } from '../../tensor/precision.js';
import type { AutoPrecision } from '../engine/precision_auto.js';
import type { Device } from '../../tensor/storage.js';

export const DATASETS = DATASET_NAMES;
export type DatasetName = (typeof DATASETS)[number];

/** Everything that determines a training run. Written into result.json as `config`. */
export interface TrainConfig {
  model: ModelType;
  /** Size overrides of a named model (--layers --width --heads, and --context below; src/nn/models/presets.ts). */
  layers?: number;
  width?: number;
  heads?: number;
  /** Start from these weights (safetensors under PyTorch / HF names, or our model file) instead of the seed's. */
  init?: string;
  /** MLP hidden widths (SmolCluster's `hidden`). */
  hidden: number[];
  /** MNIST, the seeded synthetic sets, CIFAR-10 or a text file (run.ts `loadTrainData`; docs/DATA.md). */
  dataset: DatasetName;
  dataDir?: string;
  /** cifar10: random crop (pad 4) + horizontal flip of the training images, drawn from the seed. */
  augment?: boolean;
  /** text: the file, folder or glob to train on and its tokenizer (gpt2, bytes or a tokenizer.json; default gpt2). */
  dataFile?: string;
  tokenizer?: string;
  /** text: the validation corpus (--val-file) or the share of documents held out (--val-fraction, default 0.1). */
  valFile?: string;
  valFraction?: number;
  /** text: the JSONL / Parquet field holding each document (default `text`). */
  textField?: string;
  /** text: --data-file is chat JSONL (data/chat.ts; also found by itself from its first record). */
  chat?: boolean;
  /** Chat data: conversations packed several to a window, attending only within themselves (data/chat_packing.ts). */
  packing?: boolean;
  /** Tokens per training window of a token dataset (default: the dataset's); never the model's positions. */
  context?: number;
  /** A transformer's dropout probability (default: the preset's). */
  dropout?: number;
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
  /** Where cosine, linear and wsd end (--min-lr; unset: 0). */
  minLr?: number;
  /** wsd's decay phase (--decay-steps; unset: a fifth of the run). */
  decaySteps?: number;
  /** Global-norm gradient clipping; 0 disables. */
  clipGradNorm: number;
  seed: number;
  /** Evaluate on the test set every N steps (0: only at the end). */
  evalEvery: number;
  evalBatchSize: number;
  /** Record per-layer and global gradient norms every step (SmolCluster's `track_gradients`). */
  trackGradients: boolean;
  /** Recompute each layer's activations in the backward (--activation-checkpointing; nn/activation_checkpointing.ts). */
  activationCheckpointing?: boolean;
  /** torch's label_smoothing ε for the training cross-entropy (--label-smoothing; loop/objective.ts). */
  labelSmoothing?: number;
  /** Stop when the evaluation loss has not improved for this many evaluations (--early-stopping-patience; loop/early_stopping.ts). */
  earlyStoppingPatience?: number;
  /** The least lowering of the best evaluation loss that counts as an improvement (default 0). */
  earlyStoppingThreshold?: number;
  /** Keep the model of the lowest evaluation loss (--save-best; on with early stopping; run/best_model.ts). */
  saveBest?: boolean;
  /** Stop after this many steps (0: run all epochs). */
  maxSteps: number;
  threads: number;
  /**
   * The compute precision (--precision; docs/PRECISION.md). `auto` is resolved before training
   * (train/engine/precision.ts), so the config a run writes holds fp32 or bf16.
   */
  precision: PrecisionChoice;
  /** Where this process trains: cpu or webgpu (--device, resolved by train/engine/device.ts; default cpu). */
  device?: Device;
  /** Text models: rank 0 writes a sample every N steps (--sample-every; train/loop/samples.ts), after this prompt, at this temperature (0: greedy). */
  sampleEvery?: number;
  samplePrompt?: string;
  sampleTemperature?: number;
  /** Tokens per sample (default 32). */
  sampleTokens?: number;
  /** LoRA (--lora-*, nn/lora/): adapters of this rank on these modules, the rest frozen; from an --adapter folder; --save merged. */
  loraRank?: number;
  loraAlpha?: number;
  loraDropout?: number;
  loraTargets?: string[];
  loraBaseDtype?: LoraBaseDtype;
  adapter?: string;
  mergeLora?: boolean;
  /** Parameters frozen by name (--freeze: globs or /regex/, comma-separated). */
  freeze?: string;
  /** Why `auto` chose `precision` (only when it was asked for). */
  precisionAuto?: AutoPrecision;
}

/** Defaults chosen so the quick start reaches the documented accuracy (README). */
export const DEFAULTS: Partial<Record<ModelType, Partial<TrainConfig>>> = {
  mlp: { epochs: 2, batchSize: 32, lr: 0.02, optimizer: 'sgd', momentum: 0.9, schedule: 'cosine' },
  cnn: { epochs: 1, batchSize: 32, lr: 0.02, optimizer: 'sgd', momentum: 0.9, schedule: 'cosine' },
  simple_cnn: { epochs: 1, batchSize: 32, lr: 0.02, optimizer: 'sgd', momentum: 0.9, schedule: 'cosine' },
};

/** ResNets train with SGD + momentum, transformers with AdamW (their published recipes, shorter). */
function familyDefaults(model: ModelType): Partial<TrainConfig> {
  if (model.startsWith('resnet')) return { epochs: 1, batchSize: 32, lr: 0.05, optimizer: 'sgd', momentum: 0.9, schedule: 'cosine' };
  if (isTokenModel(model)) return { epochs: 1, batchSize: 16, lr: 1e-3, optimizer: 'adamw', schedule: 'cosine', clipGradNorm: 1 };
  return {};
}

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
    precision: 'fp32',
    ...familyDefaults(model),
    ...DEFAULTS[model],
  };
}
