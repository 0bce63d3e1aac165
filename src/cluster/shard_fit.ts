/**
 * A letters task's training as a strategy over the one training loop: one process, the whole shard
 * as every epoch's batch (in file order), and a step it owns — forward, the summed loss, the early
 * stop, backward of the summed loss — before the loop's optimizer step.
 */
import { setImmediate as turn } from 'node:timers/promises';
import type { ClassificationDataset } from '../data/dataset.js';
import { LETTER_CLASSES, LETTER_FEATURES, type LetterShard } from '../data/letters.js';
import { backward } from '../tensor/autograd.js';
import { BufferRecycler } from '../tensor/recycler.js';
import { valuesToSend } from '../tensor/boundary/host_values.js';
import type { Storage } from '../tensor/storage.js';
import type { Tensor } from '../tensor/tensor.js';
import { batchInput, batchLoss } from '../train/loop/objective.js';
import type { StepOutcome, StepWork } from '../train/loop/step.js';
import type { Leadership, PlannedStep, StepPlanning, Strategy, StrategyContext } from '../train/strategies/strategy.js';
import type { ClassificationBatch } from '../data/loader.js';

/** The original's rule: stop when the summed loss moved by this much or less. */
export const EARLY_STOP_DELTA = 0.2;

/** A shard as the loop's dataset (a classification task over the 16 features). */
export function shardDataset(shard: LetterShard): ClassificationDataset {
  return { name: shard.name, task: 'classification', size: shard.rows, inputShape: [LETTER_FEATURES], inputs: shard.features, numClasses: LETTER_CLASSES, labels: shard.labels };
}

export class ShardFit implements Strategy, StepPlanning, Leadership {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly planning: StepPlanning = this;
  readonly leadership: Leadership = this;
  readonly name = 'shard-fit';
  readonly rank = 0;
  readonly worldSize = 1;
  /** Epochs with a weight update. */
  updates = 0;
  /** The last forward pass: its logits (valid until the next epoch) and summed loss. */
  last: { logits: Tensor; loss: number } | null = null;
  private previous = Infinity;
  private stopped = false;
  private readonly batch: ClassificationBatch;
  /** Seeding backward with the row count turns the mean loss's gradient into the summed loss's. */
  private readonly seed: Float32Array;
  /**
   * Each epoch's buffers are the previous epoch's (or the previous task's), zeroed: spares the
   * allocations and garbage collection that cost ~20% of an epoch of this small model.
   */
  private readonly recycler: BufferRecycler;
  private sliceStart = performance.now();
  /** The shard's features on the model's device (the cpu adopts the shard's own array). */
  private input: Tensor | null = null;

  /** `sliceMs`: hand the event loop a turn after an epoch once this much training has passed (null: never). */
  constructor(private readonly start: Float32Array, shard: LetterShard, private readonly sliceMs: number | null) {
    const indices = new Int32Array(shard.rows);
    for (let i = 0; i < indices.length; i++) indices[i] = i;
    this.batch = { size: shard.rows, indices, inputs: shard.features, labels: shard.labels };
    this.seed = Float32Array.of(shard.rows);
    this.recycler = idleRecyclers.pop() ?? new BufferRecycler();
  }

  async setup(ctx: StrategyContext): Promise<void> {
    ctx.model.arena().params.write(this.start);
  }

  /** Every epoch is the whole shard, until the loss stops moving. */
  async *steps(_ctx: StrategyContext, _data: unknown, _batchSize: number, epochs: number): AsyncGenerator<PlannedStep> {
    for (let epoch = 0; epoch < epochs && !this.stopped; epoch++) yield [epoch, this.batch];
  }

  /** Forward, and unless the summed loss has stopped moving, backward of it; the loop then steps. */
  async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    const rows = this.batch.size;
    const mean = await this.epoch(ctx, work);
    if (mean === null) this.stopped = true;
    else this.updates++;
    return { loss: mean ?? NaN, samples: rows, exchangeStart: await work.beforeExchange(), commMs: 0, waitMs: 0, stop: mean === null };
  }

  /**
   * One epoch in recycled buffers, on any device: the forward in a fresh run, the loss read
   * through the boundary (the cpu's own memory at once, a GPU's awaited) before the early-stop
   * test, then backward resuming the same run (it reads the forward's buffers, which nothing else
   * took meanwhile). The mean loss, or null once the summed loss stopped moving; the last logits
   * stay valid until the next epoch's run.
   */
  private async epoch(ctx: StrategyContext, work: StepWork): Promise<number | null> {
    const rows = this.batch.size;
    // The shard is every epoch's batch: adopted (cpu) or uploaded once per task.
    this.input ??= batchInput(work.data, this.batch, ctx.model.arena().device);
    const input = this.input;
    const { logits, loss } = this.recycler.run(() => {
      const out = ctx.model.forward(input);
      return { logits: out, loss: batchLoss(work.data, out, this.batch) };
    });
    const mean = (await valuesToSend(loss.storage as Storage<Float32Array>))[0];
    this.last = { logits, loss: mean * rows };
    if (Math.abs(this.previous - this.last.loss) <= EARLY_STOP_DELTA) return null;
    this.previous = this.last.loss;
    this.recycler.resume(() => backward(loss, this.seed));
    return mean;
  }

  /** Nobody evaluates: a task's error is that of its last forward pass. */
  isLeader(): boolean {
    return false;
  }

  async afterStep(): Promise<void> {
    if (this.sliceMs === null || performance.now() - this.sliceStart < this.sliceMs) return;
    await turn();
    this.sliceStart = performance.now();
  }

  async gather(local: Float32Array): Promise<Float32Array> {
    return local;
  }

  /** Hands the buffers on to the next task: the last logits have been read by then (letters_model.ts). */
  async close(): Promise<void> {
    idleRecyclers.push(this.recycler);
  }
}

/**
 * Recyclers no task is using: one task's buffers serve the next (the same shapes, task after task).
 * A recycler belongs to one task at a time — fits that run at once never share one.
 */
const idleRecyclers: BufferRecycler[] = [];
