import type { Dataset } from '../data/dataset.js';
import type { ClassificationBatch, RegressionBatch } from '../data/loader.js';
import { crossEntropy, mseLoss } from '../tensor/ops/loss.js';
import { Tensor } from '../tensor/tensor.js';

export type AnyBatch = ClassificationBatch | RegressionBatch;

/**
 * The loss a dataset's task calls for: softmax cross-entropy on class labels, mean squared error
 * on real-valued targets. Both are means over the batch, so ranks' losses average to the global one.
 */
export function batchLoss(data: Dataset, output: Tensor, batch: AnyBatch): Tensor {
  if (data.task === 'classification') return crossEntropy(output, (batch as ClassificationBatch).labels);
  const targets = (batch as RegressionBatch).targets;
  return mseLoss(output, new Tensor(targets, [batch.size, ...data.targetShape]));
}

/** Width of the model's output layer for a dataset: classes, or target values per sample. */
export function outputWidth(data: Dataset): number {
  return data.task === 'classification' ? data.numClasses : data.targetShape.reduce((n, d) => n * d, 1);
}

/** The input tensor of a batch. */
export function batchInput(data: Dataset, batch: AnyBatch): Tensor {
  return new Tensor(batch.inputs, [batch.size, ...data.inputShape]);
}
