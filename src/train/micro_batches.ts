/**
 * Gradient accumulation (`--grad-accum K`): a rank's batch of an optimizer step is K micro-batches
 * of --batch-size samples each, run forward and backward one after the other so only one
 * micro-batch's activations are alive at a time. The loader gathers the K·B samples of the step as
 * one batch (the same samples one process at K× the batch would take), and this file cuts it into
 * views.
 *
 * Each micro-batch's mean loss is back-propagated with the seed gradient w_k (its lossWeight:
 * samples, or scored tokens) and the summed gradient is divided by Σ w_k, so the arena holds the
 * gradient of the mean loss over the whole step's batch: exactly (up to float rounding) what one
 * K× batch gives, also for masked-LM batches whose micro-batches score different numbers of
 * tokens. The strategy then communicates once per optimizer step, as without accumulation.
 * Layers that look at the whole batch (BatchNorm's statistics) see micro-batches instead, as in
 * PyTorch.
 */
import type { Dataset } from '../data/dataset.js';
import { sampleSize, targetSize } from '../data/dataset.js';
import type { Module } from '../nn/module.js';
import { backward } from '../tensor/autograd.js';
import { scaleInPlace } from '../tensor/scale.js';
import { BufferRecycler } from '../tensor/recycler.js';
import type { Tensor } from '../tensor/tensor.js';
import { type AnyBatch, batchInput, batchLoss, lossWeight } from './objective.js';

export interface LocalGradient {
  /** Mean loss over the batch (NaN when nothing was scored). */
  loss: number;
  samples: number;
  /** What the loss is a mean over (objective.ts `lossWeight`). */
  weight: number;
}

/**
 * Each model's step buffers (activations, intermediate gradients), reused from step to step: a fresh
 * zeroed typed array of a few MB (the CNN's conv outputs at batch 32) costs a page-faulting calloc
 * and garbage-collector work every step — 15 % of a 2-worker CNN step's CPU and 20 % in the
 * collector before. Nothing a step creates outlives it: the loss is read as a number inside, and
 * parameter gradients are arena views that never come from the recycler.
 */
const recyclers = new WeakMap<Module, BufferRecycler>();

/** Forward and backward of a rank's batch, in micro-batches of at most `microSize` samples; gradients land in the arena. */
export function forwardBackward(model: Module, data: Dataset, batch: AnyBatch, microSize: number): LocalGradient {
  let recycler = recyclers.get(model);
  if (!recycler) recyclers.set(model, (recycler = new BufferRecycler()));
  return recycler.run(() => forwardBackwardOnce(model, data, batch, microSize));
}

function forwardBackwardOnce(model: Module, data: Dataset, batch: AnyBatch, microSize: number): LocalGradient {
  if (batch.size <= microSize) {
    const loss = batchLoss(data, model.forward(batchInput(data, batch)), batch);
    backward(loss);
    return { loss: loss.item(), samples: batch.size, weight: lossWeight(data, batch) };
  }
  let lossSum = 0;
  let weight = 0;
  for (const micro of microBatches(data, batch, microSize)) {
    const w = lossWeight(data, micro);
    if (w === 0) continue;
    const loss = batchLoss(data, model.forward(batchInput(data, micro)), micro);
    backward(loss, Float32Array.of(w));
    lossSum += loss.item() * w;
    weight += w;
  }
  if (weight > 0) scaleInPlace(model.arena().grads, 1 / weight);
  return { loss: weight > 0 ? lossSum / weight : NaN, samples: batch.size, weight };
}

/** One batch's forward, then `runBackward` — a strategy's own backward (e.g. overlapped with sending gradients). */
export async function forwardThen(model: Module, data: Dataset, batch: AnyBatch, runBackward: (loss: Tensor, weight: number) => Promise<void>): Promise<LocalGradient> {
  const loss = batchLoss(data, model.forward(batchInput(data, batch)), batch);
  const weight = lossWeight(data, batch);
  await runBackward(loss, weight);
  return { loss: loss.item(), samples: batch.size, weight };
}

/** Consecutive views of `batch`, `size` samples each (the last may be smaller); nothing is copied. */
export function* microBatches(data: Dataset, batch: AnyBatch, size: number): Generator<AnyBatch> {
  const s = sampleSize(data);
  const t = targetSize(data);
  for (let from = 0; from < batch.size; from += size) {
    const to = Math.min(from + size, batch.size);
    const part = { size: to - from, indices: batch.indices.subarray(from, to), inputs: batch.inputs.subarray(from * s, to * s) };
    if ('targets' in batch) yield { ...part, targets: batch.targets.subarray(from * t, to * t) };
    else yield { ...part, labels: batch.labels.subarray(from * t, to * t) };
  }
}
