/**
 * The model and the local training of one task: the original's one-hidden-layer network (16 → h →
 * ReLU → 26, softmax cross-entropy), built from our `nn` layers and trained by the one training
 * loop (train/loop/loop.ts) with a strategy that owns its steps (shard_fit.ts).
 *
 * Training is full-batch gradient descent on the *summed* cross-entropy over the shard (the
 * original's meaning of eta: the gradient of the sum, not the mean), for up to `epochs` epochs,
 * stopping early once the summed loss changes by at most EARLY_STOP_DELTA between epochs. With the
 * same starting weights and shard the result is the same bits on any cpu node: a task's outcome never
 * depends on which cpu node ran it. A node on the GPU (its --device) trains the same epochs there;
 * its delta differs from a cpu node's by float32 rounding only (the kernels sum in other orders).
 */
import { buildMlp } from '../nn/models/mlp.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { argmax } from '../tensor/ops/reduce.js';
import type { Precision } from '../tensor/precision.js';
import { CPU, type Device } from '../tensor/storage.js';
import { Tensor } from '../tensor/tensor.js';
import { LETTER_CLASSES, LETTER_FEATURES, type LetterShard } from '../data/letters.js';
import { defaultConfig } from '../train/run/config.js';
import { train } from '../train/loop/loop.js';
import { ShardFit, shardDataset } from './shard_fit.js';

export { EARLY_STOP_DELTA } from './shard_fit.js';

export function buildLettersModel(hidden: number, seed: number): Module {
  return buildMlp({ type: 'mlp', inputDim: LETTER_FEATURES, hidden, out: LETTER_CLASSES }, seed);
}

/** The number of parameters of the letters model with `hidden` units (the length of the weights on the wire). */
export function lettersParamCount(hidden: number): number {
  return LETTER_FEATURES * hidden + hidden + hidden * LETTER_CLASSES + LETTER_CLASSES;
}

export interface LocalFit {
  /** Final weights minus starting weights. */
  delta: Float32Array;
  /** Misclassified fraction of the shard at the last evaluated weights. */
  trainError: number;
  /** Summed cross-entropy at the last evaluated weights. */
  trainLoss: number;
  /** Epochs with a weight update (≤ epochs; fewer after an early stop). */
  epochs: number;
}

/** What one task trains: the model's width, its starting weights, the shard, and plain SGD's settings. */
export interface ShardTask {
  hidden: number;
  start: Float32Array;
  shard: LetterShard;
  epochs: number;
  lr: number;
  /** The compute precision (the job's; default fp32). */
  precision?: Precision;
  /** Where the node trains (its --device; default the cpu). */
  device?: Device;
}

/** Trains the model from `start` on one shard and returns the weight delta (all in one go). */
export function fitShard(task: ShardTask): Promise<LocalFit> {
  return fit(task, null);
}

/**
 * fitShard, handing the event loop a turn at least every `sliceMs` of training (between epochs),
 * so a node's heartbeats and incoming frames keep flowing while it trains a long task. The same
 * epochs in the same order: the same bits as fitShard.
 */
export function fitShardInSlices(task: ShardTask, sliceMs: number): Promise<LocalFit> {
  return fit(task, sliceMs);
}

/** The task through the training loop: plain SGD (no momentum, no decay, constant rate), one full-batch step per epoch. */
async function fit(task: ShardTask, sliceMs: number | null): Promise<LocalFit> {
  const { hidden, start, shard, epochs, lr } = task;
  if (start.length !== lettersParamCount(hidden)) throw new Error(`fitShard: ${start.length} weights for a model of ${lettersParamCount(hidden)} (hidden ${hidden})`);
  const config = {
    ...defaultConfig('mlp'), hidden: [hidden], batchSize: shard.rows, epochs, lr,
    momentum: 0, weightDecay: 0, schedule: 'constant' as const, evalEvery: 0, precision: task.precision ?? 'fp32',
    device: task.device ?? CPU,
  };
  const strategy = new ShardFit(start, shard, sliceMs);
  const data = shardDataset(shard);
  try {
    const { model } = await train(config, { train: data, test: data }, strategy);
    // The weights and the last logits are read back once, at the end of the task (copies, on any device).
    const weights = await model.arena().params.read();
    const delta = new Float32Array(weights.length);
    for (let i = 0; i < delta.length; i++) delta[i] = weights[i] - start[i];
    const last = strategy.last;
    // The error of the last forward pass only (an argmax per epoch would cost ~10% of the task).
    let trainError = 1;
    if (last) trainError = hostErrorRate((await last.logits.read()) as Float32Array, shard.labels);
    return { delta, trainError, trainLoss: last?.loss ?? 0, epochs: strategy.updates };
  } finally {
    await strategy.close();
  }
}

/** Misclassified fraction of a shard under `weights` (the forward runs now; its predictions are read with await). */
export function evaluateShard(model: Module, weights: Float32Array, shard: LetterShard): Promise<number> {
  model.arena().params.write(weights);
  return errorRate(noGrad(() => model.forward(Tensor.fromHost(shard.features, [shard.rows, LETTER_FEATURES]))), shard.labels);
}

/** errorRate over logits read back to the host (rows × classes, row-major); the first maximum wins, as argmax does. */
function hostErrorRate(logits: Float32Array, labels: Int32Array): number {
  const classes = logits.length / labels.length;
  let wrong = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
    if (best !== labels[i]) wrong++;
  }
  return wrong / labels.length;
}


async function errorRate(logits: Tensor, labels: Int32Array): Promise<number> {
  const predicted = await argmax(logits);
  let wrong = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] !== labels[i]) wrong++;
  return wrong / labels.length;
}
