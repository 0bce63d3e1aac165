import type { Dataset } from '../data/dataset.js';
import { BatchLoader } from '../data/loader.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { argmax } from '../tensor/ops/reduce.js';
import { type AnyBatch, batchInput, batchLoss } from './objective.js';

export interface EvalResult {
  loss: number;
  /** Fraction of correct predictions; null for regression. */
  accuracy: number | null;
  samples: number;
}

/** Mean loss (and accuracy, for classification) over a whole dataset, in eval mode, without a graph. */
export function evaluate(model: Module, data: Dataset, batchSize = 1000): EvalResult {
  const wasTraining = model.training;
  model.eval();
  const order = Int32Array.from({ length: data.size }, (_, i) => i);
  const loader = new BatchLoader<Dataset>(data, order, batchSize);
  let lossSum = 0;
  let correct = 0;
  noGrad(() => {
    for (const batch of loader.batches() as Iterable<AnyBatch>) {
      const output = model.forward(batchInput(data, batch));
      lossSum += batchLoss(data, output, batch).item() * batch.size;
      if ('labels' in batch) correct += countCorrect(argmax(output), batch.labels);
    }
  });
  model.train(wasTraining);
  return { loss: lossSum / data.size, accuracy: data.task === 'classification' ? correct / data.size : null, samples: data.size };
}

function countCorrect(pred: Int32Array, labels: Int32Array): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) n++;
  return n;
}
