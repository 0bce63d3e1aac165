import type { Module } from '../nn/module.js';
import type { Optimizer } from '../nn/optim/optimizer.js';

/** What a strategy sees of the run. */
export interface StrategyContext {
  model: Module;
  optimizer: Optimizer;
}

/** Time a strategy spent communicating and waiting for others in one step, measured where it happens. */
export interface CommTiming {
  commMs: number;
  waitMs: number;
}

/**
 * How processes combine their work. The training loop is one; a strategy is a handful of hooks
 * over it (see DESIGN.md "One training loop, many strategies").
 */
export interface Strategy {
  readonly name: string;
  readonly rank: number;
  readonly worldSize: number;
  /** Once, before the first step (e.g. make every rank start from rank 0's parameters). */
  setup(ctx: StrategyContext): Promise<void>;
  /**
   * After backward, before the optimizer step: combine the gradients in the arena and the local
   * loss (the mean over this rank's `samples`). Returns the loss every rank agrees on (the
   * global-batch mean) and the time it took.
   */
  reduceGradients(ctx: StrategyContext, localLoss: number, samples: number, step: number): Promise<CommTiming & { loss: number }>;
  /** After the optimizer step (e.g. compare parameter checksums every K steps). */
  afterStep(ctx: StrategyContext, step: number): Promise<void>;
  /** Gathers one equal-length vector from every rank (rank-major); used for per-rank totals. */
  gather(local: Float32Array): Promise<Float32Array>;
  close(): Promise<void>;
}
