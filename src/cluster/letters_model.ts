/**
 * The model and the local training of one task: the original's one-hidden-layer network (16 → h →
 * ReLU → 26, softmax cross-entropy), built from our `nn` layers and trained through our autograd.
 *
 * Training is full-batch gradient descent on the *summed* cross-entropy over the shard (the
 * original's meaning of eta: the gradient of the sum, not the mean), for up to `epochs` epochs,
 * stopping early once the summed loss changes by at most EARLY_STOP_DELTA between epochs. With the
 * same starting weights and shard the result is the same bits on any node: a task's outcome never
 * depends on where it ran.
 */
import { buildMlp } from '../nn/models/mlp.js';
import type { Module } from '../nn/module.js';
import { SGD } from '../nn/optim/sgd.js';
import { backward, noGrad } from '../tensor/autograd.js';
import { crossEntropy } from '../tensor/ops/loss.js';
import { argmax } from '../tensor/ops/reduce.js';
import { Tensor } from '../tensor/tensor.js';
import { LETTER_CLASSES, LETTER_FEATURES, type LetterShard } from '../data/letters.js';

/** The original's rule: stop when the summed loss moved by this much or less. */
export const EARLY_STOP_DELTA = 0.2;

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

/** Trains a copy of the model from `start` on one shard and returns the weight delta. */
export function fitShard(model: Module, start: Float32Array, shard: LetterShard, epochs: number, lr: number): LocalFit {
  const arena = model.arena();
  if (start.length !== arena.size) throw new Error(`fitShard: ${start.length} weights for a model of ${arena.size}`);
  arena.data.set(start);
  const x = new Tensor(shard.features, [shard.rows, LETTER_FEATURES]);
  const opt = new SGD(arena, { lr });
  // Seeding backward with the row count turns the mean loss's gradient into the summed loss's.
  const seed = Float32Array.of(shard.rows);
  let previous = Infinity;
  let updates = 0;
  let last: { logits: Tensor; loss: number } | null = null;
  for (let e = 0; e < epochs; e++) {
    model.zeroGrad();
    const logits = model.forward(x);
    const mean = crossEntropy(logits, shard.labels);
    last = { logits, loss: mean.data[0] * shard.rows };
    if (Math.abs(previous - last.loss) <= EARLY_STOP_DELTA) break;
    previous = last.loss;
    backward(mean, seed);
    opt.step();
    updates++;
  }
  const delta = new Float32Array(arena.size);
  for (let i = 0; i < delta.length; i++) delta[i] = arena.data[i] - start[i];
  // The error of the last forward pass only (an argmax per epoch would cost ~10% of the task).
  return { delta, trainError: last ? errorRate(last.logits, shard.labels) : 1, trainLoss: last?.loss ?? 0, epochs: updates };
}

/** Misclassified fraction of a shard under `weights`. */
export function evaluateShard(model: Module, weights: Float32Array, shard: LetterShard): number {
  model.arena().data.set(weights);
  return noGrad(() => errorRate(model.forward(new Tensor(shard.features, [shard.rows, LETTER_FEATURES])), shard.labels));
}

function errorRate(logits: Tensor, labels: Int32Array): number {
  const predicted = argmax(logits);
  let wrong = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] !== labels[i]) wrong++;
  return wrong / labels.length;
}
