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
import { mappedOrRefuse } from '../tensor/boundary/host_values.js';
import { CPU, type Storage } from '../tensor/storage.js';
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
  /** The shard's features on the GPU (a GPU task only). */
  private deviceInput: Tensor | null = null;

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
    const mean = ctx.model.arena().device === CPU ? this.epochOnHost(ctx, work) : await this.epochOnDevice(ctx, work);
    if (mean === null) this.stopped = true;
    else this.updates++;
    return { loss: mean ?? NaN, samples: rows, exchangeStart: await work.beforeExchange(), commMs: 0, waitMs: 0, stop: mean === null };
  }

  /** One epoch on the cpu, in recycled buffers: the mean loss, or null once the summed loss stopped moving. */
  private epochOnHost(ctx: StrategyContext, work: StepWork): number | null {
    const rows = this.batch.size;
    return this.recycler.run(() => {
      const logits = ctx.model.forward(batchInput(work.data, this.batch));
      const loss = batchLoss(work.data, logits, this.batch);
      // Read in place from the host's own memory, before the recycler may hand the buffer on.
      const mean = mappedOrRefuse(loss.storage as Storage<Float32Array>, 'shard fit: the loss')[0];
      this.last = { logits, loss: mean * rows };
      if (Math.abs(this.previous - this.last.loss) <= EARLY_STOP_DELTA) return null;
      this.previous = this.last.loss;
      backward(loss, this.seed);
      return mean;
    });
  }

  /**
   * The same epoch on a GPU: the loss is read back (awaited) before the early-stop test, so the
   * buffers are fresh ones (the recycler's promise — nothing read after the next run starts —
   * does not hold across an await), and the last logits stay valid until the task reads them.
   */
  private async epochOnDevice(ctx: StrategyContext, work: StepWork): Promise<number | null> {
    const rows = this.batch.size;
    // The shard is every epoch's batch: uploaded once per task.
    this.deviceInput ??= batchInput(work.data, this.batch, ctx.model.arena().device);
    const logits = ctx.model.forward(this.deviceInput);
    const loss = batchLoss(work.data, logits, this.batch);
    const mean = (await loss.read())[0];
    this.last = { logits, loss: mean * rows };
    if (Math.abs(this.previous - this.last.loss) <= EARLY_STOP_DELTA) return null;
    this.previous = this.last.loss;
    backward(loss, this.seed);
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
