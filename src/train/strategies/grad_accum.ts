/**
 * Gradient accumulation (--grad-accum K) as a strategy that owns the step: a rank's batch is K
 * micro-batches, run forward and backward one after the other (micro_batches.ts) before the
 * wrapped strategy exchanges the summed gradient once. Everything else is the wrapped strategy's:
 * its exchange, update, data, checkpoints and leader. The loop wraps a strategy in it when K > 1
 * and the strategy does not own the step itself (a pipeline schedule takes its micro-batches from
 * StepWork.microSize instead).
 */
import type { NamedBuffers } from '../../nn/checkpoint.js';
import type { Module } from '../../nn/module.js';
import type { Dataset } from '../../data/dataset.js';
import type { Tensor } from '../../tensor/tensor.js';
import { forwardBackward } from '../micro_batches.js';
import { exchange, loopDrivenStep, type StepOutcome, type StepWork } from '../step.js';
import type { DataShard, PlannedStep, Strategy, StrategyContext, UpdateResult } from '../strategy.js';

export class GradAccumulation implements Strategy {
  readonly sharesHealth?: boolean;
  readonly sendsNothing?: boolean;
  readonly dataShard?: DataShard;
  readonly backward?: (ctx: StrategyContext, loss: Tensor, samples: number, step: number) => Promise<void>;
  checkpointBuffers?(model: Module): NamedBuffers;
  steps?(ctx: StrategyContext, data: Dataset, batchSize: number, epochs: number, seed: number): AsyncIterable<PlannedStep>;
  isLeader?(): boolean;
  applyUpdate?(ctx: StrategyContext, step: number): Promise<UpdateResult>;
  stepsFor?(shardSteps: number): number;
  checkpointState?(): Record<string, unknown>;

  constructor(readonly inner: Strategy) {
    if (inner.runStep) throw new Error(`gradient accumulation: strategy ${inner.name} owns its steps already (it takes its micro-batches from StepWork.microSize)`);
    this.sharesHealth = inner.sharesHealth;
    this.sendsNothing = inner.sendsNothing;
    this.dataShard = inner.dataShard;
    // The optional hooks exist on the wrapper only where the wrapped strategy has them: the loop asks by presence.
    if (inner.backward) this.backward = (...a) => inner.backward!(...a);
    if (inner.checkpointBuffers) this.checkpointBuffers = (model) => inner.checkpointBuffers!(model);
    if (inner.steps) this.steps = (...a) => inner.steps!(...a);
    if (inner.isLeader) this.isLeader = () => inner.isLeader!();
    if (inner.applyUpdate) this.applyUpdate = (ctx, step) => inner.applyUpdate!(ctx, step);
    if (inner.stepsFor) this.stepsFor = (n) => inner.stepsFor!(n);
    if (inner.checkpointState) this.checkpointState = () => inner.checkpointState!();
  }

  get name(): string {
    return this.inner.name;
  }

  get rank(): number {
    return this.inner.rank;
  }

  get worldSize(): number {
    return this.inner.worldSize;
  }

  /** A batch of one micro-batch or less (an epoch's short last batch) is the wrapped strategy's usual step. */
  async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    const { batch } = work;
    if (!batch || batch.size <= work.microSize) return loopDrivenStep(ctx, this.inner, work);
    return exchange(ctx, this.inner, work, await forwardBackward(ctx.model, work.data, batch, work.microSize, this.sendsNothing === true));
  }

  setup(ctx: StrategyContext): Promise<void> {
    return this.inner.setup(ctx);
  }

  reduceGradients(ctx: StrategyContext, localLoss: number, samples: number, step: number): ReturnType<Strategy['reduceGradients']> {
    return this.inner.reduceGradients(ctx, localLoss, samples, step);
  }

  afterStep(ctx: StrategyContext, step: number): Promise<void> {
    return this.inner.afterStep(ctx, step);
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return this.inner.gather(local);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The strategy the loop drives for a run with `gradAccum` micro-batches per step. */
export function accumulating(strategy: Strategy, gradAccum: number): Strategy {
  return gradAccum > 1 && !strategy.runStep ? new GradAccumulation(strategy) : strategy;
}

