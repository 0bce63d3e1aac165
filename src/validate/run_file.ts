/**
 * run.json (schema `smolcluster-run`, version 1; docs/RUN.md): one run's per-step measurements,
 * aggregates and environment, built from the experiment folder a run leaves behind — every rank's
 * step records in metrics.jsonl (measured around the work in each step) and rank 0's result.json.
 * Nothing is averaged over the run and copied into steps: each step's numbers are that step's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainResult } from '../train/run/result.js';
import { snakeCaseKeys } from '../util/snake_case.js';
import { InputError, numberField, readSchema } from './files.js';

export const RUN_SCHEMA = 'smolcluster-run';
export const RUN_SCHEMA_VERSION = 1;

/** One rank's share of one step, as it measured it. */
export interface RankStep {
  rank: number;
  samples: number;
  compute_ms: number;
  allreduce_ms: number;
  wait_ms: number;
}

export interface RunStep {
  step: number;
  /** Global-batch mean loss (equal on every rank under allreduce). */
  loss: number;
  /** Samples of the global batch (all ranks). */
  samples: number;
  /** The step's duration on the cluster: the longest rank's compute + communication + wait. */
  step_time_ms: number;
  throughput_samples_per_sec: number;
  /** Means over the ranks of what each rank measured in this step. */
  compute_time_ms: number;
  allreduce_time_ms: number;
  wait_time_ms: number;
  /** Wall-clock end of the step (ms since the Unix epoch; the last rank to finish). */
  time: number;
  ranks: RankStep[];
}

export interface RankTotalsRun {
  rank: number;
  samples: number;
  train_time_sec: number;
  compute_time_ms: number;
  allreduce_time_ms: number;
  wait_time_ms: number;
}

export interface RunFile {
  schema: typeof RUN_SCHEMA;
  schema_version: typeof RUN_SCHEMA_VERSION;
  strategy: string;
  model: string;
  dataset: string;
  seed: number;
  num_workers: number;
  num_steps: number;
  batch_size_per_worker: number;
  global_batch_size: number;
  total_samples: number;
  /** Σ step_time_ms: time spent in training steps. */
  total_time_sec: number;
  /** Start to end of the run, including start-up, data loading and evaluation. */
  wall_time_sec: number;
  total_compute_time_ms: number;
  total_allreduce_time_ms: number;
  total_wait_time_ms: number;
  average_step_time_ms: number;
  average_loss: number;
  final_loss: number;
  average_throughput_samples_per_sec: number;
  test_loss: number | null;
  test_accuracy: number | null;
  started_at: string;
  ended_at: string;
  /** MiniCluster's names for started_at / ended_at. */
  start_timestamp: string;
  end_timestamp: string;
  steps: RunStep[];
  per_rank: RankTotalsRun[];
  environment: {
    smolcluster_version: string;
    node: string;
    backend: string;
    /** The compute precision the ranks trained in (result.json's; docs/PRECISION.md). */
    precision: 'fp32' | 'bf16';
    /** Where each rank trained, by rank: cpu or webgpu (result.json's per_rank; docs/GPU.md; absent in files written before it). */
    devices?: string[];
    threads_per_worker: number;
    host: TrainResult['host'];
  };
  experiment_dir: string;
  /** The run's configuration under snake_case keys (config.json's). */
  config: Record<string, unknown>;
}

interface StepLine {
  step: number;
  rank: number;
  loss: number;
  samples: number;
  compute_ms: number;
  comm_ms: number;
  wait_ms: number;
  time: number;
}

const PACKAGE_VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/** The step lines of a metrics.jsonl (others ignored); a line that does not parse is named. */
export function readStepLines(file: string): StepLine[] {
  if (!existsSync(file)) throw new InputError(file, 'no such file (did the run start?)');
  const out: StepLine[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new InputError(file, `line ${i + 1} is not JSON`);
    }
    if (r.kind !== 'step') return;
    const where = `line ${i + 1}: `;
    for (const k of ['step', 'rank', 'samples', 'compute_ms', 'comm_ms', 'wait_ms', 'time']) numberField(file, r, k, where);
    out.push(r as unknown as StepLine);
  });
  return out;
}

/** Builds run.json from a finished run's experiment folder. */
export function buildRunFile(experimentDir: string): RunFile {
  const resultFile = join(experimentDir, 'result.json');
  const result = readSchema(resultFile, 'smolcluster-train-result', 1) as unknown as TrainResult;
  // snake_case, whichever spelling wrote the file (result.json nested config camelCase before).
  const config = snakeCaseKeys(result.config) as Record<string, unknown>;
  const metricsFile = join(experimentDir, 'metrics.jsonl');
  const lines = readStepLines(metricsFile);
  // Files written before world_size: every rank trained, so workers counted them all.
  const ranks = result.world_size ?? result.workers;
  const byStep = new Map<number, StepLine[]>();
  for (const l of lines) {
    const list = byStep.get(l.step) ?? [];
    list.push(l);
    byStep.set(l.step, list);
  }
  const stepNumbers = [...byStep.keys()].sort((a, b) => a - b);
  if (stepNumbers.length !== result.steps) {
    throw new InputError(metricsFile, `holds ${stepNumbers.length} steps but result.json reports ${result.steps}`);
  }
  const perRank = new Map<number, RankTotalsRun>();
  const steps: RunStep[] = stepNumbers.map((step) => {
    const recs = byStep.get(step)!.sort((a, b) => a.rank - b.rank);
    if (recs.length !== ranks) throw new InputError(metricsFile, `step ${step} has records of ${recs.length} ranks, expected ${ranks}`);
    const samples = recs.reduce((n, r) => n + r.samples, 0);
    const stepMs = Math.max(...recs.map((r) => r.compute_ms + r.comm_ms + r.wait_ms));
    const mean = (k: 'compute_ms' | 'comm_ms' | 'wait_ms'): number => recs.reduce((s, r) => s + r[k], 0) / recs.length;
    for (const r of recs) {
      const t = perRank.get(r.rank) ?? { rank: r.rank, samples: 0, train_time_sec: 0, compute_time_ms: 0, allreduce_time_ms: 0, wait_time_ms: 0 };
      t.samples += r.samples;
      t.train_time_sec += (r.compute_ms + r.comm_ms + r.wait_ms) / 1000;
      t.compute_time_ms += r.compute_ms;
      t.allreduce_time_ms += r.comm_ms;
      t.wait_time_ms += r.wait_ms;
      perRank.set(r.rank, t);
    }
    // The loss of the lowest rank that trained in the step (a parameter server trains on nothing).
    const lossRec = recs.find((r) => r.samples > 0) ?? recs[0];
    return {
      step,
      loss: lossRec.loss,
      samples,
      step_time_ms: round3(stepMs),
      throughput_samples_per_sec: stepMs > 0 ? round3((samples / stepMs) * 1000) : 0,
      compute_time_ms: round3(mean('compute_ms')),
      allreduce_time_ms: round3(mean('comm_ms')),
      wait_time_ms: round3(mean('wait_ms')),
      time: Math.max(...recs.map((r) => r.time)),
      ranks: recs.map((r) => ({ rank: r.rank, samples: r.samples, compute_ms: r.compute_ms, allreduce_ms: r.comm_ms, wait_ms: r.wait_ms })),
    };
  });
  const sum = (f: (s: RunStep) => number): number => steps.reduce((a, s) => a + f(s), 0);
  const totalMs = sum((s) => s.step_time_ms);
  const totalSamples = sum((s) => s.samples);
  const n = steps.length;
  return {
    schema: RUN_SCHEMA,
    schema_version: RUN_SCHEMA_VERSION,
    strategy: result.strategy,
    model: result.model,
    dataset: config.dataset as string,
    seed: config.seed as number,
    num_workers: result.workers,
    num_steps: n,
    batch_size_per_worker: config.batch_size as number,
    global_batch_size: n > 0 ? steps[0].samples : 0,
    total_samples: totalSamples,
    total_time_sec: round3(totalMs / 1000),
    wall_time_sec: result.wall_seconds,
    total_compute_time_ms: round3(sum((s) => s.compute_time_ms)),
    total_allreduce_time_ms: round3(sum((s) => s.allreduce_time_ms)),
    total_wait_time_ms: round3(sum((s) => s.wait_time_ms)),
    average_step_time_ms: n > 0 ? round3(totalMs / n) : 0,
    average_loss: n > 0 ? sum((s) => s.loss) / n : NaN,
    final_loss: n > 0 ? steps[n - 1].loss : NaN,
    average_throughput_samples_per_sec: totalMs > 0 ? round3((totalSamples / totalMs) * 1000) : 0,
    test_loss: result.test_loss,
    test_accuracy: result.test_accuracy,
    started_at: result.started_at,
    ended_at: result.ended_at,
    start_timestamp: result.started_at,
    end_timestamp: result.ended_at,
    steps,
    per_rank: [...perRank.values()].sort((a, b) => a.rank - b.rank).map((t) => ({
      ...t, train_time_sec: round3(t.train_time_sec), compute_time_ms: round3(t.compute_time_ms),
      allreduce_time_ms: round3(t.allreduce_time_ms), wait_time_ms: round3(t.wait_time_ms),
    })),
    environment: {
      smolcluster_version: PACKAGE_VERSION,
      node: process.version,
      backend: result.backend,
      precision: result.precision ?? 'fp32',
      devices: (result.per_rank ?? []).map((r) => r.device ?? 'cpu'),
      threads_per_worker: result.threads,
      host: result.host,
    },
    experiment_dir: experimentDir,
    config,
  };
}

/** Reads and checks a run.json: the fields validate and baseline use must be there and numeric. */
export function readRunFile(file: string): RunFile {
  const o = readSchema(file, RUN_SCHEMA, RUN_SCHEMA_VERSION);
  for (const k of ['num_workers', 'num_steps', 'average_step_time_ms', 'average_throughput_samples_per_sec', 'final_loss']) numberField(file, o, k);
  if (!Array.isArray(o.steps)) throw new InputError(file, 'steps must be an array');
  (o.steps as unknown[]).forEach((s, i) => {
    if (typeof s !== 'object' || s === null) throw new InputError(file, `steps[${i}] is not an object`);
    numberField(file, s as Record<string, unknown>, 'step', `steps[${i}].`);
    const loss = (s as Record<string, unknown>).loss;
    // JSON has no NaN: a diverged step's loss is written as null.
    if (typeof loss !== 'number' && loss !== null) throw new InputError(file, `steps[${i}].loss must be a number, got ${JSON.stringify(loss)}`);
  });
  if (o.steps.length !== o.num_steps) throw new InputError(file, `num_steps is ${String(o.num_steps)} but steps holds ${o.steps.length}`);
  return o as unknown as RunFile;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
