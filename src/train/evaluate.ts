import { type Dataset, isTokenTask } from '../data/dataset.js';
import { BatchLoader } from '../data/loader.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { BufferRecycler } from '../tensor/recycler.js';
import { type AnyBatch, batchInput, batchLoss, countCorrect, lossWeight } from './objective.js';
import type { EvalResult } from '../metrics/records.js';

export type { EvalResult };

/**
 * Mean loss (and accuracy, for classification and token tasks) over a whole dataset, in eval mode,
 * without a graph. Batch losses are weighted by what they average over (objective.ts `lossWeight`),
 * so a token task's loss is the mean over all scored tokens of the set, whatever the batch size.
 */
export function evaluate(model: Module, data: Dataset, batchSize = 1000): EvalResult {
  const wasTraining = model.training;
  model.eval();
  const order = Int32Array.from({ length: data.size }, (_, i) => i);
  const loader = new BatchLoader<Dataset>(data, order, evalBatchSize(data, batchSize));
  let lossSum = 0;
  let weight = 0;
  let correct = 0;
  // Each batch reuses the previous one's buffers (the CNN's conv outputs at batch 1000 are ~100 MB):
  // nothing a batch creates is read after it, and the recycler is dropped with this call.
  const recycler = new BufferRecycler();
  noGrad(() => {
    for (const batch of loader.batches() as Iterable<AnyBatch>) {
      recycler.run(() => {
        const output = model.forward(batchInput(data, batch));
        const w = lossWeight(data, batch);
        if (w > 0) lossSum += batchLoss(data, output, batch).item() * w;
        weight += w;
        correct += countCorrect(data, output, batch) ?? 0;
      });
    }
  });
  model.train(wasTraining);
  const loss = weight > 0 ? lossSum / weight : NaN;
  const token = isTokenTask(data);
  return {
    loss,
    accuracy: data.task === 'regression' ? null : weight > 0 ? correct / weight : NaN,
    ...(token ? { perplexity: Math.exp(loss) } : {}),
    samples: data.size,
  };
}

/** A token task's logits are batch × T × vocab floats: at GPT-2's vocabulary 1000 sequences would be tens of GB. */
const MAX_EVAL_LOGITS = 1 << 24;

/** The requested evaluation batch, capped for token tasks so the logits stay near 64 MB. */
export function evalBatchSize(data: Dataset, requested: number): number {
  if (!isTokenTask(data)) return requested;
  return Math.max(1, Math.min(requested, Math.floor(MAX_EVAL_LOGITS / (data.inputShape[0] * data.vocabSize))));
}
