/**
 * The loop-driven data-parallel step as a reusable default: a strategy that only combines
 * gradients extends LoopDrivenStrategy, implements GradientExchange (reduceGradients, and
 * optionally its own backward), and inherits the core's runStep — forward and backward of the
 * batch, then its exchange (step.ts loopDrivenStep). Its `gradients` capability is itself, so
 * gradient accumulation can drive the same exchange over micro-batches.
 */
import { type StepOutcome, type StepWork, loopDrivenStep } from './step.js';
import type { GradientExchange, Strategy, StrategyContext } from '../strategies/strategy.js';

export abstract class LoopDrivenStrategy {
  /**
   * The subclass is the exchange (it declares `implements GradientExchange`). No abstract
   * members here on purpose: the subclass's own members stay plain declarations, not overrides.
   */
  get gradients(): GradientExchange {
    return this as unknown as GradientExchange;
  }

  runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    return loopDrivenStep(ctx, this.gradients, work);
  }
}

/** Whether `strategy` takes the loop-driven step (it did not write a runStep of its own): its gradients may come from elsewhere. */
export function takesLoopDrivenStep(strategy: Strategy): strategy is Strategy & { gradients: GradientExchange } {
  return strategy.gradients !== undefined && strategy.runStep === LoopDrivenStrategy.prototype.runStep;
}

/** The exchange of a strategy that combines gradients computed elsewhere (a pipeline's or tensor-parallel group's data-parallel strategy). */
export function gradientsOf(strategy: Strategy): GradientExchange {
  if (!strategy.gradients) throw new Error(`strategy ${strategy.name} computes its own gradients: it cannot combine ones computed elsewhere`);
  return strategy.gradients;
}
