import { performance } from 'node:perf_hooks';
import type { Dataset } from '../data/dataset.js';
import { BatchLoader } from '../data/loader.js';
import { DistributedSampler } from '../data/sampler.js';
import type { Module } from '../nn/module.js';
import { type ModelSpec, createModel, defaultSpec } from '../nn/models/index.js';
import { clipGradNorm } from '../nn/optim/clip.js';
import { makeOptimizer } from '../nn/optim/index.js';
import { type LrSchedule, makeSchedule } from '../nn/optim/schedule.js';
import { backward } from '../tensor/autograd.js';
import type { TrainConfig } from './config.js';
import { type AnyBatch, batchInput, batchLoss, outputWidth } from './objective.js';
import { type EvalResult, evaluate } from './evaluate.js';
import type { Strategy, StrategyContext } from './strategy.js';

/** One optimizer step as seen by one rank; times measured around the work itself. */
export interface StepRecord {
  step: number;
  epoch: number;
  rank: number;
  /** Global-batch mean loss (equal on every rank). */
  loss: number;
  /** Samples this rank processed in the step. */
  samples: number;
  lr: number;
  computeMs: number;
  commMs: number;
  waitMs: number;
  gradNorm?: number;
  /** Wall-clock time (ms since the epoch) when the step ended. */
  time: number;
}

export interface EvalRecord extends EvalResult {
  step: number;
  epoch: number;
}

/** Receives the run's progress; every method is optional. */
export interface TrainObserver {
  onStart?(info: { totalSteps: number; model: ModelSpec; parameters: number }): void;
  onStep?(r: StepRecord): void;
  onEval?(r: EvalRecord): void;
  onEnd?(): void;
}

export interface TrainData {
  train: Dataset;
  test: Dataset;
}

export interface TrainOutcome {
  model: Module;
  spec: ModelSpec;
  steps: number;
  finalLoss: number;
  finalEval: EvalResult | null;
  /** Samples this rank trained on / time spent in training steps only (evaluation excluded). */
  trainSamples: number;
  trainSeconds: number;
  totals: { computeMs: number; commMs: number; waitMs: number };
}

/** The model spec a config describes, for a dataset's input shape. */
export function specFor(config: TrainConfig, data: Dataset): ModelSpec {
  const spec = defaultSpec(config.model, data.inputShape, outputWidth(data));
  return spec.type === 'mlp' ? { ...spec, hidden: config.hidden.length === 1 ? config.hidden[0] : config.hidden } : spec;
}

/**
 * The one training loop: every strategy runs through it. Each rank iterates its shard of every
 * global batch, computes the loss and gradients of its share, lets the strategy combine them, and
 * takes the optimizer step.
 */
export async function train(config: TrainConfig, data: TrainData, strategy: Strategy, observer: TrainObserver = {}): Promise<TrainOutcome> {
  const spec = specFor(config, data.train);
  const model = createModel(spec, config.seed);
  const optimizer = makeOptimizer(model.arena(), {
    name: config.optimizer, lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay,
  });
  const ctx: StrategyContext = { model, optimizer };
  await strategy.setup(ctx);

  const sampler = new DistributedSampler({
    size: data.train.size, worldSize: strategy.worldSize, rank: strategy.rank, seed: config.seed, shuffle: true,
  });
  const loader = new BatchLoader(data.train, sampler, config.batchSize);
  const totalSteps = config.maxSteps > 0 ? Math.min(config.maxSteps, loader.numBatches * config.epochs) : loader.numBatches * config.epochs;
  const schedule = makeSchedule({ name: config.schedule, lr: config.lr, totalSteps, warmupSteps: config.warmupSteps });
  observer.onStart?.({ totalSteps, model: spec, parameters: model.numParameters() });

  const outcome: TrainOutcome = {
    model, spec, steps: 0, finalLoss: NaN, finalEval: null, trainSamples: 0, trainSeconds: 0,
    totals: { computeMs: 0, commMs: 0, waitMs: 0 },
  };
  let step = 0;
  let lastEpoch = 0;
  for (let epoch = 0; epoch < config.epochs && step < totalSteps; epoch++) {
    for (const batch of loader.batches(epoch)) {
      if (step >= totalSteps) break;
      lastEpoch = epoch;
      const r = await trainStep(ctx, strategy, schedule, config, data.train, batch, step, epoch);
      accumulate(outcome, r);
      observer.onStep?.(r);
      step++;
      if (config.evalEvery > 0 && step % config.evalEvery === 0 && step < totalSteps) {
        observer.onEval?.({ step, epoch, ...evaluate(model, data.test, config.evalBatchSize) });
      }
    }
  }
  outcome.finalEval = evaluate(model, data.test, config.evalBatchSize);
  // The epoch of the last step taken (maxSteps may end the run before the last epoch).
  observer.onEval?.({ step, epoch: lastEpoch, ...outcome.finalEval });
  observer.onEnd?.();
  return outcome;
}

async function trainStep(
  ctx: StrategyContext, strategy: Strategy, schedule: LrSchedule, config: TrainConfig, data: Dataset, batch: AnyBatch,
  step: number, epoch: number,
): Promise<StepRecord> {
  const { model, optimizer } = ctx;
  const t0 = performance.now();
  model.zeroGrad();
  const loss = batchLoss(data, model.forward(batchInput(data, batch)), batch);
  backward(loss);
  const t1 = performance.now();
  const reduced = await strategy.reduceGradients(ctx, loss.item(), batch.size, step);
  const t2 = performance.now();
  const gradNorm = config.clipGradNorm > 0 ? clipGradNorm(model.arena().grad, config.clipGradNorm) : undefined;
  optimizer.lr = schedule.lrAt(step);
  optimizer.step();
  const t3 = performance.now();
  await strategy.afterStep(ctx, step);
  const t4 = performance.now();
  // Compute is everything in the step that was not communication or waiting for peers.
  const strategyOverhead = t2 - t1 - reduced.commMs - reduced.waitMs;
  return {
    step, epoch, rank: strategy.rank, loss: reduced.loss, samples: batch.size, lr: optimizer.lr,
    computeMs: t1 - t0 + strategyOverhead + (t3 - t2),
    commMs: reduced.commMs + (t4 - t3),
    waitMs: reduced.waitMs, gradNorm, time: Date.now(),
  };
}

function accumulate(o: TrainOutcome, r: StepRecord): void {
  o.steps++;
  o.finalLoss = r.loss;
  o.trainSamples += r.samples;
  o.trainSeconds += (r.computeMs + r.commMs + r.waitMs) / 1000;
  o.totals.computeMs += r.computeMs;
  o.totals.commMs += r.commMs;
  o.totals.waitMs += r.waitMs;
}

