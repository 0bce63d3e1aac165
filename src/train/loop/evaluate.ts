import { type Dataset, isTokenTask } from '../../data/dataset.js';
import { BatchLoader } from '../../data/loader.js';
import type { Module } from '../../nn/module.js';
import { lastUse } from '../../tensor/handover.js';
import { noGrad } from '../../tensor/autograd.js';
import { withLayerRecycling } from '../../tensor/layer_recycling.js';
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
 * would exceed `bytesBudget` (measured on a first batch of one sample); each reuses the previous
 * one's buffers (the CNN's conv outputs at batch 1000 are ~100 MB).
 */
export async function evaluate(model: Module, data: Dataset, batchSize = 1000, bytesBudget = EVAL_BYTES): Promise<EvalResult> {
  const device = model.arena().device;
  // Each decoder layer's buffers reused by the next (tensor/layer_recycling.ts): the batch's recycler
  // keeps what outlives a layer only, not every layer's activations (32 layers of an 8B model's at 512
  // tokens: 16 GB).
  const forward: EvalForward<AnyBatch> = (batch, within) => within(() => noGrad(() => withLayerRecycling(() => model.forward(batchInput(data, batch, device)))));
  const sums = await evaluationLoop(model, data, batchSize, forward, { bytesBudget });
  return evalResult(data, sums);
}

/**
 * Runs a synchronous piece of a batch's forward (and nothing that must outlive the batch: no
 * gathered parameters) inside the batch's recycled run; the piece itself where the loop does not
 * recycle.
 */
export type Within = <T>(piece: () => T) => T;

/** A batch's forward: its output, or null where this rank scores nothing. Builds no graph (noGrad, or a graph it drops). */
export type EvalForward<B> = (batch: B, within: Within) => Tensor | null | Promise<Tensor | null>;

/** How the evaluation loop runs a forward whose computation goes through `within`. */
export interface EvalBudget {
  /**
   * Every piece the forward runs through `within` keeps nothing it allocates past its batch: its
   * buffers and the scoring's are recycled from batch to batch (tensor/recycler.ts), and batches are
   * sized so they hold at most this many bytes, measured on a first batch of one sample (per rank).
   */
  bytesBudget?: number;
}

/** Ranks that evaluate one test set together (ZeRO-3's layer-major evaluation: layered_evaluation.ts). */
export interface EvalShare {
  rank: number;
  count: number;
  /** Rank-major all-gather of equal-length inputs (ProcessGroup.allGather); every rank calls it at the same points. */
  allGather(values: Float32Array): Promise<Float32Array>;
}

/**
 * The one evaluation loop (a model on any device, a tensor-parallel group, a pipeline's stages):
 * the test set in order, in batches of at most `batchSize` samples (evalBatchSize), the model in
 * eval mode meanwhile; `forward` gives each batch's output, scored into the sums (scoreOutput), or
 * null where this rank scores nothing (an earlier pipeline stage, a tensor-parallel rank other
 * than 0).
 */
export async function evaluationLoop(model: Module, data: Dataset, batchSize: number, forward: EvalForward<AnyBatch>, budget: EvalBudget = {}): Promise<EvalSums> {
  const wasTraining = model.training;
  model.eval();
  const sums: EvalSums = { loss: 0, weight: 0, correct: 0 };
  const order = Int32Array.from({ length: data.size }, (_, i) => i);
  const cap = evalBatchSize(data, batchSize);
  const loader = new BatchLoader<Dataset>(data, new Int32Array(0), cap);
  const recycler = budget.bytesBudget === undefined ? null : new BufferRecycler();
  let next = 0;
  /** The next batch of up to `size` samples, scored. Returns its size. */
  const step = async (size: number): Promise<number> => {
    const [from, to] = [next, Math.min(next + size, data.size)];
    next = to;
    await scoreBatch(data, loader.batchOf(order.subarray(from, to)) as AnyBatch, forward, sums, recycler);
    return to - from;
  };
  try {
    let size = cap;
    if (recycler && budget.bytesBudget !== undefined && data.size > 0) {
      // One sample first measures what a sample's forward holds; the rest go in batches that fit
      // the budget (ResNet-18 at 1000 CIFAR images would hold about 10 GB, GPT-2 at 32 sequences
      // of 64 tokens 1.9 GB).
      const probed = await step(1);
      const perSample = recycler.bytesTaken / Math.max(probed, 1);
      size = Math.max(1, Math.min(cap, Math.floor(budget.bytesBudget / Math.max(perSample, 1))));
    }
    while (next < data.size) await step(size);
  } finally {
    model.train(wasTraining);
  }
  return sums;
}

/** Every rank's sums added up, in rank order (sent as float64 bytes, so nothing is rounded on the way). */
export async function addedOver(share: EvalShare, sums: EvalSums): Promise<EvalSums> {
  const mine = new Float64Array([sums.loss, sums.weight, sums.correct]);
  const all = new Float64Array((await share.allGather(new Float32Array(mine.buffer))).slice().buffer);
  const total: EvalSums = { loss: 0, weight: 0, correct: 0 };
  for (let r = 0; r < share.count; r++) {
    total.loss += all[3 * r];
    total.weight += all[3 * r + 1];
    total.correct += all[3 * r + 2];
  }
  return total;
}

/**
 * One batch (or this rank's empty share of one: the forward still runs, scoring nothing): a new
 * recycled run (the last batch's buffers free again) for the forward's pieces and the scoring's
 * kernels (the scoring reads the output), then the scores read.
 */
async function scoreBatch(data: Dataset, batch: AnyBatch, forward: EvalForward<AnyBatch>, sums: EvalSums, recycler: BufferRecycler | null): Promise<void> {
  const within: Within = recycler ? (piece) => recycler.resume(piece) : (piece) => piece();
  recycler?.run(() => undefined);
  const output = await forward(batch, within);
  if (!output) return;
  // The output is read nowhere else: handed to the loss, which writes its probabilities over the logits.
  await within(() => scoreOutput(data, output, batch, sums, true));
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
export function scoreOutput(data: Dataset, output: Tensor, batch: AnyBatch, sums: EvalSums, handOver = false): Promise<void> {
  const w = lossWeight(data, batch);
  // The predictions first: a handed-over output's logits become the loss's probabilities (ops/loss.ts), a second logits-sized buffer saved.
  const predicted = predictions(data, output);
  const loss = noGrad(() => batchLoss(data, handOver ? lastUse(output) : output, batch));
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

/**
 * What an evaluation batch's buffers may hold: about what a small training step's activations hold
 * (GPT-2 at 64 tokens: ~60 MB a sequence), so the evaluation does not set the run's peak memory
 * (at 256 MB it did: rank 0 of plain data parallelism and every ZeRO-3 rank ~300 MB above the
 * others on 4-layer GPT-2). An MLP's or a small CNN's batches of 1000 still fit.
 */
export const EVAL_BYTES = 64 * 1024 * 1024;

/** A token task's logits are batch × T × vocab floats: at GPT-2's vocabulary 1000 sequences would be tens of GB. */
const MAX_EVAL_LOGITS = 1 << 24;

/** The requested evaluation batch, capped for token tasks so the logits stay near 64 MB. */
export function evalBatchSize(data: Dataset, requested: number): number {
  if (!isTokenTask(data)) return requested;
  return Math.max(1, Math.min(requested, Math.floor(MAX_EVAL_LOGITS / (data.inputShape[0] * data.vocabSize))));
}
