import { IGNORE_INDEX, type Dataset, isTokenTask } from '../../data/dataset.js';
import type { ClassificationBatch, RegressionBatch, TokenBatch } from '../../data/loader.js';
import { packTokens } from '../../nn/layers/packed_sequences.js';
import { auxLossOf } from '../../nn/layers/router_loss.js';
import { lastUse } from '../../tensor/handover.js';
import { add } from '../../tensor/ops/elementwise.js';
import { crossEntropy, isIgnoredLabel, mseLoss } from '../../tensor/ops/loss.js';
import { argmaxIndices } from '../../tensor/ops/reduce.js';
import { CPU, hostDType, type Device } from '../../tensor/storage.js';
import { Tensor } from '../../tensor/tensor.js';

export type AnyBatch = ClassificationBatch | RegressionBatch | TokenBatch;

/**
 * The loss a dataset's task calls for: softmax cross-entropy on class labels, mean squared error
 * on real-valued targets, and for the token tasks the mean cross-entropy over the positions that
 * are scored (logits [N, T, vocab]; IGNORE_INDEX positions take no part). Every loss is a mean over
 * its batch's `lossWeight`, so ranks' and micro-batches' losses average to the global one when
 * weighted by it.
 */
export function batchLoss(data: Dataset, output: Tensor, batch: AnyBatch): Tensor {
  if (data.task !== 'regression') {
    const { labels, scored } = batchLabels(data, batch, output.device, output.shape[output.ndim - 1]);
    return crossEntropy(output, labels, { scored, labelSmoothing: (data as TrainingSet).labelSmoothing ?? 0 });
  }
  const targets = (batch as RegressionBatch).targets;
  return mseLoss(output, Tensor.fromHost(targets, [batch.size, ...data.targetShape], false, output.device));
}

/** A training set whose cross-entropy smooths its targets (--label-smoothing): the objective travels with the data every strategy's step reads. */
export type TrainingSet = Dataset & { readonly labelSmoothing?: number };

/**
 * The training set with torch's `label_smoothing` ε for its cross-entropy (the target becomes
 * (1 − ε)·onehot + ε / classes); the set itself when ε is 0 or unset. Evaluation reads the test set,
 * which keeps the plain cross-entropy, so its loss and perplexity mean what they say. Regression has
 * no classes to smooth over and is refused.
 */
export function withLabelSmoothing(data: Dataset, epsilon: number | undefined): TrainingSet {
  if (!epsilon) return data;
  if (!(epsilon > 0 && epsilon < 1)) throw new RangeError(`--label-smoothing must lie in [0, 1), got ${epsilon}`);
  if (data.task === 'regression') throw new RangeError(`--label-smoothing ${epsilon}: ${data.name} is a regression set (mean squared error), which has no classes to smooth over`);
  return { ...data, labelSmoothing: epsilon };
}

/**
 * A batch's class labels as the loss reads them: an int32 tensor on the device the loss runs on
 * (the cpu adopts the batch's array; a GPU gets them uploaded once), and the number of positions
 * scored. Both are settled here on the host, where the labels come from, each checked against the
 * `classes` of the output (the loss cannot count or check labels on a GPU without reading them back).
 */
export function batchLabels(data: Dataset, batch: AnyBatch, device: Device, classes: number): { labels: Tensor; scored: number } {
  const labels = (batch as ClassificationBatch | TokenBatch).labels;
  let scored = 0;
  for (let i = 0; i < labels.length; i++) {
    if (isIgnoredLabel(labels[i])) continue;
    if (labels[i] >= classes || labels[i] < 0) throw new Error(`crossEntropy: label ${labels[i]} at row ${i} is outside [0, ${classes}) and is not the ignore label ${IGNORE_INDEX}`);
    scored++;
  }
  return { labels: Tensor.fromHost(labels, [labels.length], false, device), scored };
}

/**
 * batchLoss in a training step, which reads the model's output nowhere else: the output is handed
 * over to the loss (handover.ts), so the cross-entropy may write its probabilities over the
 * logits instead of beside them (ops/loss.ts).
 */
export function trainingLoss(data: Dataset, output: Tensor, batch: AnyBatch): Tensor {
  // A mixture of experts attaches its weighted load-balancing loss to its output (nn/layers/router_loss.ts).
  const aux = auxLossOf(output);
  const loss = batchLoss(data, lastUse(output), batch);
  return aux ? add(loss, aux) : loss;
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

/**
 * A batch's predictions (argmax of the last axis), computed where the output lives and read when
 * scored: an int32 tensor, or null for regression, which predicts no class.
 */
export function predictions(data: Dataset, output: Tensor): Tensor | null {
  return data.task === 'regression' ? null : argmaxIndices(output);
}

/** Correct predictions in a batch, over its scored positions (label ≥ 0; token tasks skip IGNORE_INDEX). */
export function countCorrect(batch: AnyBatch, predicted: Int32Array): number {
  const labels = (batch as ClassificationBatch | TokenBatch).labels;
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] >= 0 && predicted[i] === labels[i]) n++;
  return n;
}

/** Width of the model's output layer for a dataset: classes, target values per sample, or the vocabulary. */
export function outputWidth(data: Dataset): number {
  if (data.task === 'classification') return data.numClasses;
  if (isTokenTask(data)) return data.vocabSize;
  return data.targetShape.reduce((n, d) => n * d, 1);
}

/**
 * The input tensor of a batch on the model's device (token ids: int32 [N, T], which the embedding
 * reads there); a packed batch's ids carry its position ids (nn/layers/packed_sequences.ts).
 */
export function batchInput(data: Dataset, batch: AnyBatch, device: Device = CPU): Tensor {
  // fromHost adopts the batch's array on the cpu (no copy) and uploads it elsewhere (token ids as int32).
  const input = Tensor.fromHost(batch.inputs, [batch.size, ...data.inputShape], false, device);
  const positions = (batch as TokenBatch).positions;
  return positions ? packTokens(input, positions) : input;
}
