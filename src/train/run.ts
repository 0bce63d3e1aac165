import { loadMnist } from '../data/mnist.js';
import { fanOut } from '../metrics/fanout.js';
import { StepMetricsObserver } from '../metrics/step_metrics.js';
import { saveModel } from '../nn/checkpoint.js';
import { backend } from '../tensor/dispatch.js';
import type { TrainConfig } from './config.js';
import { type ExperimentPaths, createExperiment } from './experiment.js';
import { type TrainObserver, train } from './loop.js';
import { type TrainResult, buildResult, totalsVector, unpackTotals, writeResult } from './result.js';
import type { Strategy } from './strategy.js';

export interface RunOptions {
  config: TrainConfig;
  strategy: Strategy;
  experiment: ExperimentPaths;
  /** Extra observer for rank 0 (the progress bar). */
  observer?: TrainObserver;
  /** Another copy of result.json (--output). */
  output?: string;
  /** Model file to save at the end (rank 0). */
  save?: string;
}

/**
 * One process's part of a run, the same for a single process and for every worker of a cluster:
 * rank 0 creates the experiment folder, every rank appends its steps to metrics.jsonl, and rank 0
 * writes result.json with every rank's totals.
 */
export async function runTraining(o: RunOptions): Promise<TrainResult | null> {
  const { config, strategy } = o;
  const rank = strategy.rank;
  const startedAt = new Date();
  // Data first, so a bad --data-dir leaves no folder behind. Rank 0 then creates (and resets) the
  // folder before strategy setup, which no rank passes without rank 0.
  const data = loadMnist({ dataDir: config.dataDir });
  if (rank === 0) createExperiment(o.experiment, { ...config, workers: strategy.worldSize, strategy: strategy.name });
  const metrics = new StepMetricsObserver(o.experiment.metrics, rank);
  const observers = rank === 0 && o.observer ? fanOut(metrics, o.observer) : metrics;
  try {
    const outcome = await train(config, data, strategy, observers);
    const perRank = unpackTotals(await strategy.gather(totalsVector(outcome)));
    if (rank !== 0) return null;
    const kernels = backend();
    const result = buildResult(config, outcome, {
      backend: kernels.description, threads: kernels.getThreads(), startedAt, endedAt: new Date(), strategy: strategy.name, perRank,
    });
    writeResult(o.experiment.result, result);
    if (o.output) writeResult(o.output, result);
    if (o.save) saveModel(o.save, outcome.model, outcome.spec, { steps: outcome.steps, seed: config.seed });
    return result;
  } finally {
    metrics.onEnd();
    await strategy.close();
  }
}
