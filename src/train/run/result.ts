import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../util/atomic_file.js';
import os from 'node:os';
import { describeSpec } from '../../nn/models/index.js';
import { trainingFlopsPerToken } from '../../nn/models/flops.js';
import type { TrainConfig } from './config.js';
import type { TrainOutcome } from '../loop/loop.js';
import { snakeCaseKeys } from '../../util/snake_case.js';
import type { RankTotals, ResultFile } from '../../metrics/result_file.js';
import type { AutoPrecision } from '../engine/precision_auto.js';

/** result.json, version 1 (docs/RESULT.md), as this package writes it: the run's TrainConfig inside. */
export type TrainResult = ResultFile<TrainConfig>;
export type { RankTotals };

/** Devices as numbers in the totals vector (its index); one the list lacks travels as -1. */
const DEVICES = ['cpu', 'webgpu'];

/** The totals one rank contributes, as a fixed-order vector for an all-gather. */
export function totalsVector(o: TrainOutcome, device = 'cpu'): Float32Array {
  return Float32Array.of(o.trainSamples, o.trainSeconds, o.totals.computeMs, o.totals.commMs, o.totals.waitMs, o.evalMs, o.afterEvalWaitMs, DEVICES.indexOf(device));
}

export function unpackTotals(all: Float32Array): RankTotals[] {
  const width = 8;
  return Array.from({ length: all.length / width }, (_, rank) => {
    const [samples, trainSeconds, compute, comm, wait, evalMs, afterEvalWait, device] = all.subarray(rank * width, rank * width + width);
    return {
      rank, samples, train_seconds: trainSeconds, compute_ms: compute, comm_ms: comm, wait_ms: wait,
      eval_ms: evalMs, after_eval_wait_ms: afterEvalWait, device: DEVICES[device] ?? 'unknown',
    };
  });
}

/**
 * The cluster's time in training steps: the longest rank's, less what that rank spent waiting for
 * another's evaluation. Ranks step together, but only the evaluator leaves its evaluations out of
 * its own time; the others meet it at the next step's barrier that much later. Each rank's wait
 * right after an evaluation is charged to evaluation up to the evaluations' measured time (the rest
 * of that wait is the step's ordinary one).
 */
export function clusterTrainSeconds(perRank: readonly RankTotals[]): number {
  const evalMs = Math.max(0, ...perRank.map((r) => r.eval_ms ?? 0));
  return Math.max(...perRank.map((r) => r.train_seconds - Math.min(r.after_eval_wait_ms ?? 0, evalMs) / 1000));
}

export interface ResultInfo {
  backend: string;
  threads: number;
  startedAt: Date;
  endedAt: Date;
  strategy: string;
  perRank: RankTotals[];
  /** Ranks that train (default: every rank); under ps the server only aggregates. */
  trainers?: number;
  /** Token tasks: tokens per training sample (the window). */
  tokensPerSample?: number;
  /** The leader's GEMM peak in the run's precision, GFLOP/s (MFU's yardstick; absent: no MFU). */
  gemmPeakGflops?: number;
}

/** The run's steps so far: those before the checkpoint it resumed from and those it took. */
export function runSteps(outcome: Pick<TrainOutcome, 'steps' | 'startStep'>): number {
  return (outcome.startStep ?? 0) + outcome.steps;
}

/** Tokens/s and, where the model's FLOPs and a peak are known, MFU (docs/RESULT.md). */
function tokenFields(config: TrainConfig, outcome: TrainOutcome, info: ResultInfo, samplesPerSec: number): Pick<TrainResult, 'tokens_per_sec' | 'mfu'> {
  if (!info.tokensPerSample) return {};
  const tokensPerSec = samplesPerSec * info.tokensPerSample;
  const flops = trainingFlopsPerToken(outcome.spec, info.tokensPerSample);
  if (flops === null || !info.gemmPeakGflops) return { tokens_per_sec: tokensPerSec };
  const peak = info.gemmPeakGflops * 1e9 * (info.trainers ?? info.perRank.length);
  const precision = config.precision === 'bf16' ? 'bf16' : 'fp32';
  return { tokens_per_sec: tokensPerSec, mfu: { value: (tokensPerSec * flops) / peak, flops_per_token: flops, gemm_peak_gflops: info.gemmPeakGflops, precision } };
}

/**
 * The run summary. Throughput is the cluster's: all ranks' samples over the cluster's time in
 * training steps (clusterTrainSeconds: evaluations left out on every rank).
 */
export function buildResult(config: TrainConfig, outcome: TrainOutcome, info: ResultInfo): TrainResult {
  const samples = info.perRank.reduce((n, r) => n + r.samples, 0);
  const seconds = clusterTrainSeconds(info.perRank);
  return {
    schema: 'smolcluster-train-result',
    schema_version: 1,
    model: describeSpec(outcome.spec),
    parameters: outcome.model.numParameters(),
    final_loss: outcome.finalLoss,
    test_loss: outcome.finalEval?.loss ?? null,
    test_accuracy: outcome.finalEval?.accuracy ?? null,
    ...(outcome.finalEval?.perplexity != null ? { test_perplexity: outcome.finalEval.perplexity } : {}),
    samples_per_sec: seconds > 0 ? samples / seconds : 0,
    ...tokenFields(config, outcome, info, seconds > 0 ? samples / seconds : 0),
    // The run's steps (a resumed run's include those before its checkpoint, as the Trainer's global_step).
    steps: runSteps(outcome),
    ...(outcome.startStep ? { resumed_from: outcome.startStep } : {}),
    wall_seconds: (info.endedAt.getTime() - info.startedAt.getTime()) / 1000,
    train_seconds: outcome.trainSeconds,
    totals_ms: { compute: outcome.totals.computeMs, comm: outcome.totals.commMs, wait: outcome.totals.waitMs },
    workers: info.trainers ?? info.perRank.length,
    world_size: info.perRank.length,
    strategy: info.strategy,
    per_rank: info.perRank,
    backend: info.backend,
    threads: info.threads,
    device: config.device ?? 'cpu',
    precision: config.precision === 'auto' ? 'fp32' : config.precision,
    ...(config.precisionAuto ? { precision_auto: autoRecord(config.precisionAuto) } : {}),
    started_at: info.startedAt.toISOString(),
    ended_at: info.endedAt.toISOString(),
    host: { hostname: os.hostname(), platform: os.platform(), arch: os.arch(), cpus: os.cpus().length, node: process.version },
    config,
  };
}

/** auto's choice and why, as result.json spells it. */
function autoRecord(a: AutoPrecision): NonNullable<TrainResult['precision_auto']> {
  return { chose: a.precision, instructions: a.instructions, fp32_ms: a.fp32Ms, bf16_ms: a.bf16Ms, reason: a.reason };
}

/**
 * Atomically (a reader such as the dashboard never sees half a file), creating missing folders; the
 * nested `config` under snake_case keys like the rest of the file (config.json's spelling).
 */
export function writeResult(file: string, result: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  const r = result as { config?: unknown };
  const written = r && typeof r === 'object' && r.config ? { ...r, config: snakeCaseKeys(r.config) } : result;
  writeFileAtomic(file, `${JSON.stringify(written, null, 2)}\n`);
}
