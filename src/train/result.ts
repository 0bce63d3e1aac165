import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { describeSpec } from '../nn/models/index.js';
import type { TrainConfig } from './config.js';
import type { TrainOutcome } from './loop.js';

/** result.json, version 1 (docs/RESULT.md). Snake_case keys, as the rest of the ecosystem writes them. */
export interface TrainResult {
  schema: 'smolcluster-train-result';
  schema_version: 1;
  model: string;
  parameters: number;
  final_loss: number;
  test_loss: number | null;
  test_accuracy: number | null;
  /** Training samples per second across the whole run, training steps only (evaluation excluded). */
  samples_per_sec: number;
  steps: number;
  wall_seconds: number;
  train_seconds: number;
  totals_ms: { compute: number; comm: number; wait: number };
  backend: string;
  threads: number;
  started_at: string;
  ended_at: string;
  host: { hostname: string; platform: string; arch: string; cpus: number; node: string };
  config: TrainConfig;
}

export function buildResult(
  config: TrainConfig, outcome: TrainOutcome, info: { backend: string; threads: number; startedAt: Date; endedAt: Date },
): TrainResult {
  return {
    schema: 'smolcluster-train-result',
    schema_version: 1,
    model: describeSpec(outcome.spec),
    parameters: outcome.model.numParameters(),
    final_loss: outcome.finalLoss,
    test_loss: outcome.finalEval?.loss ?? null,
    test_accuracy: outcome.finalEval?.accuracy ?? null,
    samples_per_sec: outcome.trainSeconds > 0 ? outcome.trainSamples / outcome.trainSeconds : 0,
    steps: outcome.steps,
    wall_seconds: (info.endedAt.getTime() - info.startedAt.getTime()) / 1000,
    train_seconds: outcome.trainSeconds,
    totals_ms: { compute: outcome.totals.computeMs, comm: outcome.totals.commMs, wait: outcome.totals.waitMs },
    backend: info.backend,
    threads: info.threads,
    started_at: info.startedAt.toISOString(),
    ended_at: info.endedAt.toISOString(),
    host: { hostname: os.hostname(), platform: os.platform(), arch: os.arch(), cpus: os.cpus().length, node: process.version },
    config,
  };
}

export function writeResult(file: string, result: unknown): void {
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}
