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
import type { Dataset } from '../../data/dataset.js';
import { sampleSize, targetSize } from '../../data/dataset.js';
import type { Module } from '../../nn/module.js';
import { backward } from '../../tensor/autograd.js';
import { scaleInPlace } from '../../tensor/scale.js';
import { BufferRecycler } from '../../tensor/recycler.js';
import { valuesToSend } from '../../tensor/boundary/host_values.js';
import type { Storage } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { type AnyBatch, batchInput, lossWeight, trainingLoss } from './objective.js';

export interface LocalGradient {
  /** Mean loss over the batch (NaN when nothing was scored). */
  loss: number;
  samples: number;
  /** What the loss is a mean over (objective.ts `lossWeight`). */
  weight: number;
  /**
   * The loss, still being read from the device, when the caller let it wait (forwardBackward's
   * `deferLoss`): `loss` is NaN until this resolves.
   */
  lossLater?: Promise<number>;
}

/**
 * Each model's step buffers (activations, intermediate gradients), reused from step to step: a fresh
 * zeroed typed array of a few MB (the CNN's conv outputs at batch 32) costs a page-faulting calloc
 * and garbage-collector work every step — 15 % of a 2-worker CNN step's CPU and 20 % in the
 * collector before. Nothing a step creates outlives it: the loss is read as a number inside, and
 * parameter gradients are arena views that never come from the recycler.
 */
const recyclers = new WeakMap<Module, BufferRecycler>();

/**
 * Forward and backward of a rank's batch, in micro-batches of at most `microSize` samples;
 * gradients land in the arena. The losses are read on the host once the step is recorded: on the
 * cpu at once (the loss is a host value, so nothing waits), on a GPU by one read each, whose copy
 * is recorded behind the step's kernels — awaited here, or with `deferLoss` handed back unawaited
 * as `lossLater` (the caller reads it when it needs it, the device running on meanwhile).
 */
export async function forwardBackward(model: Module, data: Dataset, batch: AnyBatch, microSize: number, deferLoss = false): Promise<LocalGradient> {
  let recycler = recyclers.get(model);
  if (!recycler) recyclers.set(model, (recycler = new BufferRecycler()));
  const step = recycler.run(() => forwardBackwardOnce(model, data, batch, microSize));
  if (step.losses.every((l) => typeof l === 'number')) return step.finish(step.losses as number[]);
  if (!deferLoss) return step.finish(await Promise.all(step.losses));
  const lossLater = Promise.all(step.losses).then((ls) => step.finish(ls).loss);
  return { ...step.finish(step.losses.map(() => NaN)), lossLater };
}

/** A step's losses (host numbers, or reads under way from a device), and how they make the LocalGradient. */
interface PendingStep {
  losses: (number | Promise<number>)[];
  finish(losses: number[]): LocalGradient;
}

function forwardBackwardOnce(model: Module, data: Dataset, batch: AnyBatch, microSize: number): PendingStep {
  const device = model.arena().device;
  if (batch.size <= microSize) {
    const loss = trainingLoss(data, model.forward(batchInput(data, batch, device)), batch);
    backward(loss);
    const weight = lossWeight(data, batch);
    return { losses: [hostScalar(loss)], finish: ([l]) => ({ loss: l, samples: batch.size, weight }) };
  }
  const losses: (number | Promise<number>)[] = [];
  const weights: number[] = [];
  for (const { micro, weight: w } of microBatchPlan(data, batch, microSize)) {
    if (w === 0) continue;
    const loss = trainingLoss(data, model.forward(batchInput(data, micro, device)), micro);
    backward(loss, Float32Array.of(w));
    losses.push(hostScalar(loss));
    weights.push(w);
  }
  const weight = weights.reduce((a, b) => a + b, 0);
  if (weight > 0) scaleInPlace(model.arena().grads, 1 / weight);
  const finish = (ls: number[]): LocalGradient => {
    const mean = new MicroBatchLoss();
    ls.forEach((l, i) => mean.add(l, weights[i]));
    return { loss: mean.mean, samples: batch.size, weight };
  };
  return { losses, finish };
}

/** One micro-batch of a step, and what its mean loss is weighted by (objective.ts lossWeight: samples, or scored tokens). */
export interface MicroBatch {
  micro: AnyBatch;
  weight: number;
}

/**
 * The micro-batch loop's plan, the one every step that runs micro-batches walks (this file's
 * forwardBackward, tensor parallelism, ZeRO): the step's batch cut into views of at most
 * `microSize` samples — the batch itself when it fits — each with its loss weight. Each
 * micro-batch's loss is back-propagated with its weight as the seed and the summed gradient divided
 * by the total weight (MicroBatchLoss sums the loss the same way), so the step's gradient is the
 * whole batch's mean gradient. Whether a micro-batch that scores nothing still runs is the caller's:
 * ZeRO-3's collectives need every rank to run it.
 */
export function microBatchPlan(data: Dataset, batch: AnyBatch | null, microSize: number): MicroBatch[] {
  if (!batch) return [];
  const micros = batch.size <= microSize ? [batch] : [...microBatches(data, batch, microSize)];
  return micros.map((micro) => ({ micro, weight: lossWeight(data, micro) }));
}

/** Σ loss·weight over a step's micro-batches and Σ weight: the step's mean loss (NaN when nothing was scored). */
export class MicroBatchLoss {
  private sum = 0;
  weight = 0;

  add(loss: number, weight: number): void {
    this.sum += loss * weight;
    this.weight += weight;
  }

  get mean(): number {
    return this.weight > 0 ? this.sum / this.weight : NaN;
  }
}

/**
 * A one-element tensor's value through the host boundary: a number at once where the host
 * addresses its memory (the cpu: nothing copied, nothing awaited), else an awaited read.
 */
export function hostScalar(t: Tensor): number | Promise<number> {
  const values = valuesToSend(t.storage as Storage<Float32Array>);
  return values instanceof Promise ? values.then((v) => v[0]) : values[0];
}

/** One batch's forward, then `runBackward` — a strategy's own backward (e.g. overlapped with sending gradients). */
export async function forwardThen(model: Module, data: Dataset, batch: AnyBatch, runBackward: (loss: Tensor, weight: number) => Promise<void>): Promise<LocalGradient> {
  const loss = trainingLoss(data, model.forward(batchInput(data, batch, model.arena().device)), batch);
  const weight = lossWeight(data, batch);
  await runBackward(loss, weight);
  return { loss: await hostScalar(loss), samples: batch.size, weight };
}

/** Consecutive views of `batch`, `size` samples each (the last may be smaller); nothing is copied. */
export function* microBatches(data: Dataset, batch: AnyBatch, size: number): Generator<AnyBatch> {
  const s = sampleSize(data);
  const t = targetSize(data);
  for (let from = 0; from < batch.size; from += size) {
    const to = Math.min(from + size, batch.size);
    const part = { size: to - from, indices: batch.indices.subarray(from, to), inputs: batch.inputs.subarray(from * s, to * s) };
    // A view keeps its batch's input type (token ids int32, else float32).
    if ('targets' in batch) yield { ...part, targets: batch.targets.subarray(from * t, to * t) } as AnyBatch;
    else if ('positions' in batch && batch.positions) yield { ...part, labels: batch.labels.subarray(from * t, to * t), positions: batch.positions.subarray(from * s, to * s) } as AnyBatch;
    else yield { ...part, labels: batch.labels.subarray(from * t, to * t) } as AnyBatch;
  }
}
