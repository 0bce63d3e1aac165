/**
 * One job of rounds (federated averaging): the global weights start from the job's seed; each round
 * every shard is one task that starts from the same global weights; the deltas are averaged in task
 * order (equal weights or by sample count) and applied; the coordinator then measures the validation
 * error. Which node ran a task, when, or after how many retries never enters the arithmetic; on which
 * device it ran does, by float32 rounding only (a GPU node's delta is not a cpu node's bits).
 */
import { type Precision, withComputePrecision } from '../tensor/precision.js';
import { snakeCaseKeys } from '../util/snake_case.js';
import { applyAverage, taskWeights } from './aggregate.js';
import { buildLettersModel, evaluateShard } from './letters_model.js';
import { encodeTask, type JobSpec, type RoundReport } from './messages.js';
import type { Placed, RoundTask } from './scheduler.js';

export const RESULT_SCHEMA = 'smolcluster-federated-result';
export const RESULT_SCHEMA_VERSION = 1;

/** A job's outcome (its file, result.json, is resultFile's: docs/FEDERATED.md). */
export interface JobResult {
  schema: typeof RESULT_SCHEMA;
  schema_version: typeof RESULT_SCHEMA_VERSION;
  job: number;
  policy: string;
  rounds: number;
  epochs: number;
  hidden: number;
  lr: number;
  seed: number;
  weighting: string;
  /** The compute precision every task trained in (docs/PRECISION.md). */
  precision: Precision;
  shards: Array<{ name: string; rows: number }>;
  validationRows: number;
  /** Per round: validation and mean training error, and each task's node, device, duration and attempts. */
  history: RoundReport[];
  validationError: number;
  /** FNV-1a of the final global weights' bytes: equal checksums, bit-identical models. */
  weightsChecksum: string;
  /** Job wall time on the coordinator (ms), from its start to the last round's evaluation. */
  ms: number;
}

export interface JobContext {
  id: number;
  policy: { name: string; allowReject: boolean };
  runRound(round: number, tasks: RoundTask[]): Promise<Placed[]>;
  onRound(report: RoundReport): void;
}

export async function runJob(spec: JobSpec, ctx: JobContext): Promise<JobResult> {
  const t0 = performance.now();
  const model = buildLettersModel(spec.hidden, spec.seed);
  const global = await model.arena().params.read();
  const weights = taskWeights(spec.shards.map((s) => s.rows), spec.weighting);
  const history: RoundReport[] = [];
  for (let round = 1; round <= spec.rounds; round++) {
    const r0 = performance.now();
    const tasks = spec.shards.map((s, index) => ({
      index,
      shard: s.name,
      payload: encodeTask({
        job: ctx.id,
        round,
        task: index,
        shard: s.name,
        rows: s.rows,
        epochs: spec.epochs,
        lr: spec.lr,
        hidden: spec.hidden,
        allowReject: ctx.policy.allowReject,
        precision: spec.precision ?? 'fp32',
        weights: global,
        features: s.features,
        labels: s.labels,
      }),
    }));
    const placed = await ctx.runRound(round, tasks);
    const results = placed.map((p) => p.result);
    applyAverage(global, results.map((r) => r.delta), weights);
    const report: RoundReport = {
      round,
      validationError: await withComputePrecision(spec.precision ?? 'fp32', () => evaluateShard(model, global, spec.validation)),
      trainError: results.reduce((a, r) => a + r.trainError, 0) / results.length,
      ms: performance.now() - r0,
      tasks: placed.map((p, i) => ({ task: i, shard: spec.shards[i].name, node: p.node, device: p.result.device ?? 'cpu', ms: p.result.ms, attempts: p.attempts, trainError: p.result.trainError, epochs: p.result.epochs })),
    };
    history.push(report);
    ctx.onRound(report);
  }
  return {
    schema: RESULT_SCHEMA,
    schema_version: RESULT_SCHEMA_VERSION,
    job: ctx.id,
    policy: ctx.policy.name,
    rounds: spec.rounds,
    epochs: spec.epochs,
    hidden: spec.hidden,
    lr: spec.lr,
    seed: spec.seed,
    weighting: spec.weighting,
    precision: spec.precision ?? 'fp32',
    shards: spec.shards.map((s) => ({ name: s.name, rows: s.rows })),
    validationRows: spec.validation.rows,
    history,
    validationError: history[history.length - 1].validationError,
    weightsChecksum: await model.arena().checksum(), // evaluateShard left the global weights in the arena
    ms: performance.now() - t0,
  };
}

/** result.json of a job as written (coordinator, `submit --output`, `federated --output`): snake_case keys. */
export function resultFile(result: JobResult): string {
  return `${JSON.stringify(snakeCaseKeys(result), null, 2)}\n`;
}
