import { type Dataset, isTokenTask } from '../../data/dataset.js';
import { BatchLoader } from '../../data/loader.js';
import type { Module } from '../../nn/module.js';
import { noGrad } from '../../tensor/autograd.js';
import { BufferRecycler } from '../../tensor/recycler.js';
import { allValuesToSend, mappedOrRefuse } from '../../tensor/boundary/host_values.js';
import { CPU, type Storage } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { type AnyBatch, batchInput, batchLoss, countCorrect, countCorrectOnHost, lossWeight } from './objective.js';
import type { EvalResult } from '../../metrics/records.js';

export type { EvalResult };

/**
 * Mean loss (and accuracy, for classification and token tasks) over a whole dataset, in eval mode,
 * without a graph. Batch losses are weighted by what they average over (objective.ts `lossWeight`),
 * so a token task's loss is the mean over all scored tokens of the set, whatever the batch size.
 * Batches hold up to `batchSize` samples, fewer where their buffers would exceed `bytesBudget`
 * (measured on a first batch of 32).
 */
export function evaluate(model: Module, data: Dataset, batchSize = 1000, bytesBudget = EVAL_BYTES): EvalResult {
  const wasTraining = model.training;
  model.eval();
  const order = Int32Array.from({ length: data.size }, (_, i) => i);
  const cap = evalBatchSize(data, batchSize);
  const sums = { loss: 0, weight: 0, correct: 0 };
  // Each batch reuses the previous one's buffers (the CNN's conv outputs at batch 1000 are ~100 MB):
  // nothing a batch creates is read after it, and the recycler is dropped with this call.
  const recycler = new BufferRecycler();
  const run = (loader: BatchLoader<Dataset>): void => {
    for (const batch of loader.batches() as Iterable<AnyBatch>) recycler.run(() => addBatch(model, data, batch, sums));
  };
  noGrad(() => {
    // A small first batch measures what one sample's forward pass holds; the rest go in batches
    // that fit the budget (ResNet-18 at 1000 CIFAR images would hold about 10 GB).
    const probe = Math.min(cap, PROBE_BATCH, data.size);
    if (probe === 0) return;
    run(new BatchLoader<Dataset>(data, order.subarray(0, probe), probe));
    if (probe === data.size) return;
    const perSample = recycler.bytesTaken / probe;
    const rest = Math.max(probe, Math.min(cap, Math.floor(bytesBudget / Math.max(perSample, 1))));
    run(new BatchLoader<Dataset>(data, order.subarray(probe), rest));
  });
  model.train(wasTraining);
  return evalResult(data, sums);
}

/**
 * `evaluate` wherever the model lives: on the cpu the synchronous `evaluate` (recycled buffers,
 * batches sized to a memory budget); elsewhere the evaluation loop, each batch's loss and logits
 * read back (awaited; the predictions are taken on the host).
 */
export async function evaluateModel(model: Module, data: Dataset, batchSize = 1000): Promise<EvalResult> {
  const device = model.arena().device;
  if (device === CPU) return evaluate(model, data, batchSize);
  const sums = await evaluationLoop(model, data, batchSize, (batch) => noGrad(() => model.forward(batchInput(data, batch, device))));
  return evalResult(data, sums);
}

/**
 * The evaluation loop every asynchronous evaluation runs (a model on a GPU, a tensor-parallel
 * group, a pipeline's stages): the test set in order, in batches of at most `batchSize` samples
 * (evalBatchSize), the model in eval mode meanwhile; `forward` gives each batch's output, scored
 * into the sums (scoreOutput), or null where this rank scores nothing (an earlier pipeline stage,
 * a tensor-parallel rank other than 0). `forward` builds no graph (noGrad, or a tape it drops).
 */
export async function evaluationLoop(
  model: Module, data: Dataset, batchSize: number, forward: (batch: AnyBatch) => Tensor | null | Promise<Tensor | null>,
): Promise<EvalSums> {
  const wasTraining = model.training;
  model.eval();
  const sums: EvalSums = { loss: 0, weight: 0, correct: 0 };
  const order = Int32Array.from({ length: data.size }, (_, i) => i);
  try {
    for (const batch of new BatchLoader<Dataset>(data, order, evalBatchSize(data, batchSize)).batches() as Iterable<AnyBatch>) {
      const output = await forward(batch);
      if (output) await scoreOutput(data, output, batch, sums);
    }
  } finally {
    model.train(wasTraining);
  }
  return sums;
}

/** An evaluation's running sums: Σ loss × lossWeight, Σ lossWeight, and the correct predictions. */
export interface EvalSums {
  loss: number;
  weight: number;
  correct: number;
}

/**
 * Adds one batch's model output to the sums, wherever the output lives: its loss and logits through
 * the host boundary (the cpu's own memory, no copy; a GPU's read, awaited), the predictions taken
 * on the host. For a split model's evaluation (tensor and pipeline parallelism), whose forward the
 * strategy runs.
 */
export async function scoreOutput(data: Dataset, output: Tensor, batch: AnyBatch, sums: EvalSums): Promise<void> {
  const w = lossWeight(data, batch);
  const loss = noGrad(() => batchLoss(data, output, batch));
  const [lossValue, values] = await allValuesToSend([loss.storage, output.storage] as Storage<Float32Array>[]);
  if (w > 0) sums.loss += lossValue[0] * w;
  sums.correct += countCorrectOnHost(data, values, batch) ?? 0;
  sums.weight += w;
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

function addBatch(model: Module, data: Dataset, batch: AnyBatch, sums: { loss: number; weight: number; correct: number }): void {
  const output = model.forward(batchInput(data, batch));
  const w = lossWeight(data, batch);
  // The cpu path: the loss is read from the host's own memory, at once, before the recycler reuses it.
  if (w > 0) sums.loss += mappedOrRefuse(batchLoss(data, output, batch).storage as Storage<Float32Array>, 'evaluate: the loss')[0] * w;
  sums.weight += w;
  sums.correct += countCorrect(data, output, batch) ?? 0;
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
