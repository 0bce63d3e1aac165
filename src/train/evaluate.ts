import type { ClassificationDataset } from '../data/dataset.js';
import { BatchLoader } from '../data/loader.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { crossEntropy } from '../tensor/ops/loss.js';
import { argmax } from '../tensor/ops/reduce.js';
import { Tensor } from '../tensor/tensor.js';

export interface EvalResult {
  loss: number;
  accuracy: number;
  samples: number;
}

/** Mean loss and accuracy over a whole dataset, in eval mode and without building a graph. */
export function evaluate(model: Module, data: ClassificationDataset, batchSize = 1000): EvalResult {
  const wasTraining = model.training;
  model.eval();
  const order = Int32Array.from({ length: data.size }, (_, i) => i);
  const loader = new BatchLoader(data, order, batchSize);
  let lossSum = 0;
  let correct = 0;
  noGrad(() => {
    for (const batch of loader.batches()) {
      const logits = model.forward(new Tensor(batch.inputs, [batch.size, ...data.inputShape]));
      lossSum += crossEntropy(logits, batch.labels).item() * batch.size;
      const pred = argmax(logits);
      for (let i = 0; i < batch.size; i++) if (pred[i] === batch.labels[i]) correct++;
    }
  });
  model.train(wasTraining);
  return { loss: lossSum / data.size, accuracy: correct / data.size, samples: data.size };
}
