/**
 * The part of a training step that computes and exchanges gradients: what the loop hands a strategy
 * that owns the step (Strategy.runStep), what it gets back, and the loop-driven step every other
 * strategy takes — forward and backward of the whole batch, then the strategy's reduceGradients.
 * Everything around it (zeroing, LR, clipping, the optimizer step, metrics, evaluation,
 * checkpoints) stays in loop.ts, the same for both.
 */
import type { Dataset } from '../../data/dataset.js';
import type { BucketSpan, StepInfo } from '../../metrics/records.js';
import { type LocalGradient, forwardBackward, forwardThen } from './micro_batches.js';
import type { AnyBatch } from './objective.js';
import type { CommTiming, GradientExchange, StrategyContext } from '../strategies/strategy.js';

/** One step's work, as the loop hands it to the strategy. */
export interface StepWork {
  /** The dataset the batch comes from: its objective (objective.ts batchInput, batchLoss, lossWeight). */
  data: Dataset;
  /** This rank's samples of the step; null: nothing to compute (a process that only aggregates). */
  batch: AnyBatch | null;
  /** Samples per micro-batch at most (--batch-size); with --grad-accum K the batch holds K of them. */
  microSize: number;
  step: number;
  /** The step the LR schedule is at (a strategy that numbers its steps may differ from `step`). */
  lrStep: number;
  /** Faults are injected this run: they change the gradient before it leaves, so no backward may send early. */
  faultsInjected: boolean;
  /**
   * Call once the local gradients are final and before any leaves the process: applies the injected
   * faults, then the monitors' check (a NaN stops the run here, naming the rank). Resolves to the
   * moment the exchange begins (performance.now()), for StepOutcome.exchangeStart.
   */
  beforeExchange(): Promise<number>;
}

/** What a step's computation and exchange gave: the loss every rank agrees on, and its timings. */
export interface StepOutcome extends CommTiming {
  /** The global-batch mean loss (NaN when nothing was scored). */
  loss: number;
  /** Samples this rank computed. */
  samples: number;
  /** performance.now() when the exchange began (what beforeExchange returned): the step's compute ends there. */
  exchangeStart: number;
  info?: StepInfo;
  /** The group changed under the step: it is abandoned (no update, no record); the next planned step follows. */
  regrouped?: boolean;
  /** The run ends before this step's update (no update, no record): e.g. a local fit whose loss stopped moving. */
  stop?: boolean;
  buckets?: BucketSpan[];
  /** The whole model's gradient norm, when this rank's arena holds only part of it (tensor parallel): clipping uses it. */
  gradNorm?: number;
  /** The loss still being read from the device (Strategy.gradients.sendsNothing on a GPU): `loss` is NaN until the loop awaits this. */
  lossLater?: Promise<number>;
}

/**
 * The step as the loop drives it: forward and backward of the whole batch (through the exchange's
 * own backward when it has one, e.g. allreduce --overlap, unless faults are injected), then its
 * reduceGradients.
 */
export async function loopDrivenStep(ctx: StrategyContext, gradients: GradientExchange, work: StepWork): Promise<StepOutcome> {
  const { model } = ctx;
  const { batch, data, step } = work;
  const own = batch && gradients.backward && !work.faultsInjected ? gradients.backward : undefined;
  const local = !batch ? { loss: NaN, samples: 0, weight: 0 }
    : own ? await forwardThen(model, data, batch, (loss, w) => own(ctx, loss, w, step))
    : await forwardBackward(model, data, batch, batch.size, gradients.sendsNothing === true);
  return exchange(ctx, gradients, work, local);
}

/** Hands this rank's gradient (in the arena) and loss to the exchange's reduceGradients. */
export async function exchange(ctx: StrategyContext, gradients: GradientExchange, work: StepWork, local: LocalGradient): Promise<StepOutcome> {
  const exchangeStart = await work.beforeExchange();
  // The strategies weight the local loss by what it is a mean over (samples, or scored tokens).
  const reduced = await gradients.reduceGradients(ctx, local.loss, local.weight, work.step);
  // A strategy that sends nothing returns the local loss as given: the pending read stands for it.
  return { ...reduced, samples: local.samples, exchangeStart, ...(local.lossLater ? { lossLater: local.lossLater } : {}) };
}
