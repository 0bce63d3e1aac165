/**
 * Gradient accumulation (--grad-accum K) as a strategy that owns the step: a rank's batch is K
 * micro-batches, run forward and backward one after the other (micro_batches.ts) before the
 * wrapped strategy exchanges the summed gradient once. Everything else is the wrapped strategy's
 * (DelegatingStrategy forwards it): its exchange, update, data, placement, checkpoints and leader.
 * The loop wraps a strategy in it when K > 1 and the strategy takes the loop-driven step (a
 * pipeline schedule takes its micro-batches from StepWork.microSize instead).
 */
import { forwardBackward } from '../loop/micro_batches.js';
import { takesLoopDrivenStep } from '../loop/loop_driven.js';
import { exchange, loopDrivenStep, type StepOutcome, type StepWork } from '../loop/step.js';
import type { GradientExchange, Strategy, StrategyContext } from './strategy.js';
import { DelegatingStrategy } from './delegating.js';

export class GradAccumulation extends DelegatingStrategy {
  private readonly exchange: GradientExchange;

  constructor(inner: Strategy) {
    if (!takesLoopDrivenStep(inner)) throw new Error(`gradient accumulation: strategy ${inner.name} owns its steps already (it takes its micro-batches from StepWork.microSize)`);
    super(inner);
    this.exchange = inner.gradients;
  }

  /** A batch of one micro-batch or less (an epoch's short last batch) is the wrapped strategy's usual step. */
  override async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    const { batch } = work;
    if (!batch || batch.size <= work.microSize) return loopDrivenStep(ctx, this.exchange, work);
    return exchange(ctx, this.exchange, work, await forwardBackward(ctx.model, work.data, batch, work.microSize, this.exchange.sendsNothing === true));
  }
}

/** The strategy the loop drives for a run with `gradAccum` micro-batches per step. */
export function accumulating(strategy: Strategy, gradAccum: number): Strategy {
  return gradAccum > 1 && takesLoopDrivenStep(strategy) ? new GradAccumulation(strategy) : strategy;
}
