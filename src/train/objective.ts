import { IGNORE_INDEX, type Dataset, isTokenTask } from '../data/dataset.js';
import type { ClassificationBatch, RegressionBatch, TokenBatch } from '../data/loader.js';
import { crossEntropy, mseLoss } from '../tensor/ops/loss.js';
import { argmax } from '../tensor/ops/reduce.js';
import { Tensor } from '../tensor/tensor.js';

export type AnyBatch = ClassificationBatch | RegressionBatch | TokenBatch;

/**
 * The loss a dataset's task calls for: softmax cross-entropy on class labels, mean squared error
 * on real-valued targets, and for the token tasks the mean cross-entropy over the positions that
 * are scored (logits [N, T, vocab]; IGNORE_INDEX positions take no part). Every loss is a mean over
 * its batch's `lossWeight`, so ranks' and micro-batches' losses average to the global one when
 * weighted by it.
 */
export function batchLoss(data: Dataset, output: Tensor, batch: AnyBatch): Tensor {
  if (data.task === 'classification') return crossEntropy(output, (batch as ClassificationBatch).labels);
  if (isTokenTask(data)) return crossEntropy(output, engineLabels((batch as TokenBatch).labels));
  const targets = (batch as RegressionBatch).targets;
  return mseLoss(output, Tensor.fromHost(targets, [batch.size, ...data.targetShape]));
}

/**
 * What a batch's mean loss is a mean over: its samples, or for a token task its scored positions
 * (a masked-LM batch scores a varying number). Averaging ranks' or micro-batches' mean gradients
 * weighted by this gives exactly the gradient of the mean over all of them.
 */
export function lossWeight(data: Dataset, batch: AnyBatch): number {
  if (!isTokenTask(data)) return batch.size;
  return countScored((batch as TokenBatch).labels);
}

/** Positions of a token batch that count in the loss (label ≠ IGNORE_INDEX). */
export function countScored(labels: Int32Array): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/** Correct predictions in a batch (argmax of the last axis), over scored positions; null for regression. */
export function countCorrect(data: Dataset, output: Tensor, batch: AnyBatch): number | null {
  if (data.task === 'regression') return null;
  const labels = (batch as ClassificationBatch | TokenBatch).labels;
  const pred = argmax(output);
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] >= 0 && pred[i] === labels[i]) n++;
  return n;
}

/** Width of the model's output layer for a dataset: classes, target values per sample, or the vocabulary. */
export function outputWidth(data: Dataset): number {
  if (data.task === 'classification') return data.numClasses;
  if (isTokenTask(data)) return data.vocabSize;
  return data.targetShape.reduce((n, d) => n * d, 1);
}

/** The input tensor of a batch (token ids as float32 [N, T] for the token tasks). */
export function batchInput(data: Dataset, batch: AnyBatch): Tensor {
  return Tensor.fromHost(batch.inputs, [batch.size, ...data.inputShape]);
}

/** The engine's cross-entropy skips label -1; datasets mark skipped positions with PyTorch's -100. */
function engineLabels(labels: Int32Array): Int32Array {
  if (!labels.includes(IGNORE_INDEX)) return labels;
  return labels.map((l) => (l === IGNORE_INDEX ? -1 : l));
}
