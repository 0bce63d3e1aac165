import { type Dataset, isTokenTask } from '../../data/dataset.js';
import { BatchLoader } from '../../data/loader.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { BufferRecycler } from '../../tensor/recycler.js';
import { valuesToSend } from '../../tensor/boundary/host_values.js';
import type { Storage } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { type AnyBatch, batchInput, batchLoss, countCorrect, lossWeight, predictions } from './objective.js';
import type { EvalResult } from '../../metrics/records.js';

export type { EvalResult };

/**
 * Mean loss (and accuracy, for classification and token tasks) over a whole dataset, in eval mode,
 * without a graph, wherever the model lives. Batch losses are weighted by what they average over
 * (objective.ts `lossWeight`), so a token task's loss is the mean over all scored tokens of the
 * set, whatever the batch size. Batches hold up to `batchSize` samples, fewer where their buffers
 * would exceed `bytesBudget` (measured on a first batch of 32); each reuses the previous one's
 * buffers (the CNN's conv outputs at batch 1000 are ~100 MB).
 */
export async function evaluate(model: Module, data: Dataset, batchSize = 1000, bytesBudget = EVAL_BYTES): Promise<EvalResult> {
  const device = model.arena().device;
  const sums = await evaluationLoop(model, data, batchSize, (batch) => noGrad(() => model.forward(batchInput(data, batch, device))), { bytesBudget });
  return evalResult(data, sums);
}

/** How the evaluation loop runs a forward whose buffers all come from its own call. */
export interface EvalBudget {
  /**
   * A synchronous forward that keeps nothing it allocates (a whole model's): its buffers and the
   * scoring's are recycled from batch to batch (tensor/recycler.ts), and batches are sized so they
   * hold at most this many bytes, measured on a first batch of PROBE_BATCH samples.
   */
  bytesBudget?: number;
}

/**
 * The one evaluation loop (a model on any device, a tensor-parallel group, a pipeline's stages):
 * the test set in order, in batches of at most `batchSize` samples (evalBatchSize), the model in
 * eval mode meanwhile; `forward` gives each batch's output, scored into the sums (scoreOutput), or
 * null where this rank scores nothing (an earlier pipeline stage, a tensor-parallel rank other
 * than 0). `forward` builds no graph (noGrad, or a graph it drops).
 */
export async function evaluationLoop(
  model: Module, data: Dataset, batchSize: number, forward: (batch: AnyBatch) => Tensor | null | Promise<Tensor | null>, budget: EvalBudget = {},
): Promise<EvalSums> {
  const wasTraining = model.training;
  model.eval();
  const sums: EvalSums = { loss: 0, weight: 0, correct: 0 };
  const order = Int32Array.from({ length: data.size }, (_, i) => i);
  const cap = evalBatchSize(data, batchSize);
  const recycler = budget.bytesBudget === undefined ? null : new BufferRecycler();
  const run = async (from: number, to: number, size: number): Promise<void> => {
    for (const batch of new BatchLoader<Dataset>(data, order.subarray(from, to), size).batches() as Iterable<AnyBatch>) {
      await scoreBatch(data, batch, forward, sums, recycler);
    }
  };
  try {
    if (!recycler || budget.bytesBudget === undefined) await run(0, data.size, cap);
    else {
      // A small first batch measures what one sample's forward pass holds; the rest go in batches
      // that fit the budget (ResNet-18 at 1000 CIFAR images would hold about 10 GB).
      const probe = Math.min(cap, PROBE_BATCH, data.size);
      if (probe > 0) await run(0, probe, probe);
      const perSample = recycler.bytesTaken / Math.max(probe, 1);
      const rest = Math.max(probe, Math.min(cap, Math.floor(budget.bytesBudget / Math.max(perSample, 1))));
      if (probe > 0 && probe < data.size) await run(probe, data.size, rest);
    }
  } finally {
    model.train(wasTraining);
  }
  return sums;
}

/**
 * One batch: its forward and the scoring's kernels, in one recycled run where the loop recycles
 * (the scoring resumes the forward's run: it reads the output), then the scores read.
 */
async function scoreBatch(
  data: Dataset, batch: AnyBatch, forward: (batch: AnyBatch) => Tensor | null | Promise<Tensor | null>, sums: EvalSums, recycler: BufferRecycler | null,
): Promise<void> {
  const output = await (recycler ? recycler.run(() => forward(batch)) : forward(batch));
  if (!output) return;
  await (recycler ? recycler.resume(() => scoreOutput(data, output, batch, sums)) : scoreOutput(data, output, batch, sums));
}

/** An evaluation's running sums: Σ loss × lossWeight, Σ lossWeight, and the correct predictions. */
export interface EvalSums {
  loss: number;
  weight: number;
  correct: number;
}

/**
 * Adds one batch's model output to the sums, wherever the output lives: its loss and predictions
 * are computed on the output's device now (the kernels are issued before this returns), then read
 * through the host boundary (the cpu's own memory, no copy; a GPU's read, awaited): the loss and
 * one index per row, never the logits.
 */
export function scoreOutput(data: Dataset, output: Tensor, batch: AnyBatch, sums: EvalSums): Promise<void> {
  const w = lossWeight(data, batch);
  const loss = noGrad(() => batchLoss(data, output, batch));
  const predicted = predictions(data, output);
  return (async () => {
    const lossValue = await valuesToSend(loss.storage as Storage<Float32Array>);
    if (w > 0) sums.loss += lossValue[0] * w;
    if (predicted) sums.correct += countCorrect(batch, (await predicted.read()) as Int32Array);
    sums.weight += w;
  })();
}

/** The evaluation's result from its sums. */
export function evalResult(data: Dataset, sums: EvalSums): EvalResult {
  const loss = sums.weight > 0 ? sums.loss / sums.weight : NaN;
  return {
    loss,
    accuracy: data.task === 'regression' ? null : sums.weight > 0 ? sums.correct / sums.weight : NaN,
    ...(isTokenTask(data) ? { perplexity: Math.exp(loss) } : {}),
    samples: data.size,
  };
}

/** The first evaluation batch, whose buffers measure the bytes per sample. */
const PROBE_BATCH = 32;
/** What an evaluation batch's buffers may hold (the training step's own memory comes on top). */
const EVAL_BYTES = 256 * 1024 * 1024;

/** A token task's logits are batch × T × vocab floats: at GPT-2's vocabulary 1000 sequences would be tens of GB. */
const MAX_EVAL_LOGITS = 1 << 24;

/** The requested evaluation batch, capped for token tasks so the logits stay near 64 MB. */
export function evalBatchSize(data: Dataset, requested: number): number {
  if (!isTokenTask(data)) return requested;
  return Math.max(1, Math.min(requested, Math.floor(MAX_EVAL_LOGITS / (data.inputShape[0] * data.vocabSize))));
}
