import { performance } from 'node:perf_hooks';
import { type Dataset, isTokenTask } from '../../data/dataset.js';
import { BatchLoader } from '../../data/loader.js';
import { DistributedSampler } from '../../data/sampler.js';
import type { Module } from '../../nn/module.js';
import { enableActivationCheckpointing } from '../../nn/activation_checkpointing.js';
import { initFromFile } from '../../nn/interchange/model_io.js';
import { type ModelSpec, defaultSpec } from '../../nn/models/index.js';
import { clipGradNorm } from '../../nn/optim/clip.js';
import { makeOptimizer } from '../../nn/optim/index.js';
import { type LrSchedule, makeSchedule } from '../../nn/optim/schedule.js';
import type { TrainConfig } from '../run/config.js';
import { folderSpec, initDescribesModel, initialModel } from '../run/init_source.js';
import { type AnyBatch, outputWidth, withLabelSmoothing } from './objective.js';
import { type BestKeeper, actOnEvaluation, watchFor } from './early_stopping.js';
export type { BestKeeper };
import type { StepWork } from './step.js';
import { accumulating } from '../strategies/grad_accum.js';
import { type EvalResult, evaluate } from './evaluate.js';
import type { Rescheduled, StepRecord, TrainObserver } from '../../metrics/records.js';
import { type PlannedStep, type Strategy, type StrategyContext, type UpdateResult, isLeader } from '../strategies/strategy.js';
import type { FaultInjector } from './faults.js';
import { RunMonitors } from './monitors.js';
import { ArrivalClock, type BatchShares, SharedBatches } from './shares.js';
import type { Checkpointer, Restored } from '../run/checkpoints.js';
import { type StepPlan, checkPosition, positionAt, resumeOffset, stepPlan } from './step_plan.js';
import { sumOfSquares } from '../../tensor/scalar.js';
import { CPU, type Device, deviceMemory } from '../../tensor/storage.js';
import { SmolError } from '../../util/errors.js';
import { hostArena } from '../boundary/host_arena.js';
import { mappedMemory } from '../../tensor/boundary/host_values.js';
import { applyPrecision, checkPrecisionRuns } from '../engine/precision.js';
import { TrainingSamples } from './samples.js';
import { finishFineTune, prepareFineTune, refuseFineTune, refuseQuantizedBase } from './fine_tune.js';

// The record types the metrics sinks read live in metrics/records.ts (train imports metrics, never
// the other way); re-exported here for the loop's callers.
export type { EvalRecord, SampleRecord, StepMarks, StepRecord, TrainObserver } from '../../metrics/records.js';

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
  /** This rank's time in evaluations during the run (the leader's; the final one is after training). */
  evalMs: number;
  /** The best evaluation (--save-best, early stopping): its step and loss; null where none was watched or this rank saw none. */
  best?: { step: number; loss: number } | null;
  /** The evaluation after which early stopping ended the run (--early-stopping-patience), and the patience. */
  stoppedEarly?: { step: number; patience: number };
  /**
   * This rank's waits in the steps right after those evaluations: where another rank evaluated,
   * they hold the time it spent doing so (the leader arrives that much later), which is not training.
   */
  afterEvalWaitMs: number;
  /** The step this process resumed at (0 or absent: it started the run); `steps` counts those it took after it. */
  startStep?: number;
  /** Set when the checkpoint resumed had already taken every step this run plans (its step): nothing was trained. */
  finishedBefore?: { step: number; totalSteps: number };
}

/** The model spec a config describes, for a dataset's input shape (an --init folder's own config.json, when it names one). */
export function specFor(config: TrainConfig, data: Dataset): ModelSpec {
  if (initDescribesModel(config.init)) return folderSpec(config, data);
  // --context is the training window (the dataset's sequence length), never the model's positions.
  const sizes = { layers: config.layers, width: config.width, heads: config.heads, dropout: config.dropout };
  const spec = defaultSpec(config.model, data.inputShape, outputWidth(data), sizes);
  return spec.type === 'mlp' ? { ...spec, hidden: config.hidden.length === 1 ? config.hidden[0] : config.hidden } : spec;
}

/** What guards a run (monitors.ts) and what breaks it on purpose (faults.ts). */
export interface TrainGuards {
  /** Default: monitors that only throw (no event log). */
  monitors?: RunMonitors;
  faults?: FaultInjector;
  /** Unequal, measured shares of the global batch (load balancing, src/balance/); default equal shards. */
  balance?: BatchShares;
  /** Periodic checkpoints, and the one to resume from (checkpoints.ts). */
  checkpoints?: Checkpointer;
  /** Where the model of the lowest evaluation loss is kept (--save-best, early stopping; run/best_model.ts). */
  best?: BestKeeper;
  /**
   * Whether a sharded model (ZeRO-3) is sent whole to the leader after its final evaluation
   * (default true: the outcome's model is the whole model there). False where nothing reads it
   * (the CLI without --save): the leader's peak memory stays that of its shard.
   */
  wholeModelAtEnd?: boolean;
}


/**
 * The one training loop: every strategy runs through it. Each rank iterates its shard of every
 * global batch, computes the loss and gradients of its share, lets the strategy combine them, and
 * takes the optimizer step. A strategy may own the computation and exchange of its step
 * (Strategy.runStep: micro-batch schedules); the loop keeps the rest of the step around it.
 */
export async function train(
  config: TrainConfig, data: TrainData, given: Strategy, observer: TrainObserver = {}, guards: TrainGuards = {},
): Promise<TrainOutcome> {
  // Once per run, on every process: every op of the run (and its backward) computes in it.
  const precision = applyPrecision(config);
  // With --grad-accum K a step's batch is K micro-batches of batchSize, run by a step-owning wrapper (grad_accum.ts).
  const strategy = accumulating(given, config.gradAccum ?? 1);
  const spec = specFor(config, data.train);
  // The training set carries its objective (--label-smoothing) to every strategy's step.
  data = { ...data, train: withLabelSmoothing(data.train, config.labelSmoothing) };
  const watch = watchFor(config, strategy.name);
  if (strategy.modelBuilder && !strategy.modelBuilder.preparesModel) refuseFineTune(config, strategy.name);
  if (strategy.modelBuilder) refuseQuantizedBase(config, strategy.name, strategy.modelBuilder.takesQuantizedBase === true);
  // Adapters on and parameters frozen before the arena is built (or the model sharded): it holds what trains only.
  const prepare = (m: Module): void => void prepareFineTune(m, spec, config);
  const start = strategy.modelBuilder ? null : initialModel(config, spec);
  const model = start ? start.model : await strategy.modelBuilder!.buildModel(spec, config.seed, config.model, {
    train: data.train, batchSize: config.batchSize, optimizer: config.optimizer, resumedState: () => guards.checkpoints?.peekStrategyState() ?? null,
    device: config.device ?? CPU, init: config.init, prepare, loraBaseDtype: config.loraBaseDtype,
  });
  if (!strategy.modelBuilder) prepare(model);
  // The device this process really trains on goes into result.json (a server that only aggregates stays on the cpu).
  config.device = placeModel(model, config.device ?? CPU, strategy);
  // Where the model really is (a ps server stays on the cpu): its device must run the run's precision.
  checkPrecisionRuns(precision, config.device, strategy.rank);
  if (config.init && !start?.read && !strategy.modelBuilder?.loadsInit) initFromFile(config.init, model, spec);
  finishFineTune(model, spec, config, strategy.modelBuilder?.quantizesBase === true);
  if (config.activationCheckpointing) enableActivationCheckpointing(model, config.model);
  const optimizer = makeOptimizer(model.arena(), {
    name: config.optimizer, lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay,
  });
  const shard = strategy.dataShard ?? { index: strategy.rank, count: strategy.worldSize, compute: true };
  const sampler = new DistributedSampler({
    size: data.train.size, worldSize: shard.count, rank: shard.index, seed: config.seed, shuffle: true,
  });
  const stepBatch = config.batchSize * (config.gradAccum ?? 1);
  const shared = guards.balance ? new SharedBatches(data.train, stepBatch, shard.count, config.seed, shard) : null;
  const stepsPerEpoch = shared ? shared.stepsPerEpoch : Math.ceil(sampler.length / stepBatch);
  // --max-steps > 0 is the run's length, as the HF Trainer's max_steps: the data cycles for as many epochs as it takes.
  const epochs = config.maxSteps > 0 ? Math.max(1, Math.ceil(config.maxSteps / Math.max(1, stepsPerEpoch))) : config.epochs;
  const shardSteps = config.maxSteps > 0 ? config.maxSteps : stepsPerEpoch * epochs;
  let totalSteps = strategy.planning?.stepsFor ? strategy.planning.stepsFor(shardSteps) : shardSteps;
  const monitors = guards.monitors ?? new RunMonitors(strategy.rank, strategy.worldSize, null, strategy.sharesHealth === true);
  const plan: StepPlan = { numBatches: stepsPerEpoch, epochs, totalSteps, compute: shard.compute, offset: 0 };
  const resumed = guards.checkpoints?.restore(model, spec, optimizer, totalSteps) ?? null;
  if (resumed) {
    watch?.restore(resumed.evaluations);
    // Written at another number of workers: the same share of its epoch, in this run's batches.
    plan.offset = resumeOffset(resumed.position, plan, Boolean(strategy.planning), resumed.file);
    if (plan.offset !== 0) {
      totalSteps = config.maxSteps > 0 ? Math.min(config.maxSteps, shardSteps + plan.offset) : shardSteps + plan.offset;
      plan.totalSteps = totalSteps;
    }
    // Rank 0 wrote the position; other ranks (e.g. ps workers, with other shards) derive theirs from the step.
    if (strategy.rank === 0) checkPosition(resumed.position, positionAt(plan, resumed.position.step), resumed.file);
    observer.onResume?.(resumed.position.step, resumed.file, rescheduled(config, resumed, totalSteps));
    // Shares of another number of workers mean nothing here: the balancer starts again from equal ones.
    if (resumed.shares?.length === shard.count) guards.balance?.restore?.(resumed.shares, resumed.position.step);
  }
  if (resumed && resumed.position.step >= totalSteps) {
    // A finished run resumed (`--resume auto` once more): every rank restored the same step and stops here alike.
    return {
      model, spec, steps: 0, finalLoss: NaN, finalEval: null, trainSamples: 0, trainSeconds: 0, totals: { computeMs: 0, commMs: 0, waitMs: 0 }, evalMs: 0, afterEvalWaitMs: 0,
      finishedBefore: { step: resumed.position.step, totalSteps },
    };
  }
  const ctx: StrategyContext = { model, optimizer, totalSteps, monitors, startStep: resumed?.position.step ?? 0, resumedState: resumed?.strategy };
  const samples = TrainingSamples.of(config, spec, strategy.sharding !== undefined || strategy.evaluation !== undefined);
  const host = hostArena(model.arena());
  await strategy.setup(ctx);
  host.flush();
  const schedule = makeSchedule({ name: config.schedule, lr: config.lr, totalSteps, warmupSteps: config.warmupSteps, minLr: config.minLr, decaySteps: config.decaySteps });
  observer.onStart?.({
    totalSteps, model: spec, parameters: model.numParameters(), device: model.arena().device, ...(isTokenTask(data.train) ? { tokensPerSample: data.train.inputShape[0] } : {}),
  });

  const outcome: TrainOutcome = {
    model, spec, steps: 0, finalLoss: NaN, finalEval: null, trainSamples: 0, trainSeconds: 0,
    totals: { computeMs: 0, commMs: 0, waitMs: 0 }, evalMs: 0, afterEvalWaitMs: 0, startStep: ctx.startStep ?? 0,
  };
  let afterEval = false;
  /** The evaluation early stopping ended the run after (the leader's result; null elsewhere). */
  let lastEval: { result: EvalResult | null } | null = null;
  let step = ctx.startStep ?? 0;
  let lastEpoch = 0;
  const arrivals = new ArrivalClock();
  const steps: AsyncIterable<PlannedStep> | Iterable<PlannedStep> = strategy.planning?.steps
    ? strategy.planning.steps(ctx, data.train, config.batchSize, epochs, config.seed)
    : shared && guards.balance ? shared.plan(guards.balance, totalSteps, step, plan.offset) : stepPlan(new BatchLoader(data.train, sampler, stepBatch), plan, step);
  // A step whose loss is still on its way from the GPU (Strategy.gradients.sendsNothing): recorded once read.
  const unsettled = new UnsettledStep(model.arena().device);
  for await (const [epoch, batch, at, lrStep] of steps) {
    if (at !== undefined) step = at;
    lastEpoch = epoch;
    const { record: r, stop, settled } = await trainStep(ctx, strategy, schedule, config, data.train, batch, step, epoch, guards.faults, lrStep ?? step);
    // The previous step's loss is read now, with this step's kernels already on the device.
    await unsettled.settle();
    if (!r && stop) break; // the strategy ended the run before this step's update
    if (!r) continue; // abandoned: the group changed (the strategy plans the next step)
    if (shared) r.waitMs += shared.takeExchangeMs();
    const stepAt = step;
    const wasAfterEval = afterEval;
    const book = (): void => {
      const [scaledMs, fixedMs] = arrivals.split(r);
      if (r.samples > 0) guards.balance?.observe(stepAt, r.samples, scaledMs, fixedMs);
      accumulate(outcome, r);
      if (wasAfterEval) outcome.afterEvalWaitMs += r.waitMs;
      observer.onStep?.(r);
    };
    if (settled) unsettled.hold(r, settled, book);
    else book();
    step++;
    await guards.checkpoints?.afterStep(model, spec, optimizer, positionAt(plan, step), totalSteps, checkpointState(strategy), watch ? () => watch.state() : undefined);
    if (stop) break;
    // Every rank knows the schedule, evaluating or not: its next step may wait for the evaluator.
    afterEval = evalDue(config, plan, step, watch !== null) && step < totalSteps;
    const evaluates = afterEval && (strategy.evaluation || strategy.sharding || isLeader(strategy));
    let e: EvalResult | null = null;
    if (evaluates) {
      await unsettled.settle();
      const e0 = performance.now();
      // A sharded model is made whole on the leader first (every rank takes part), unless the strategy evaluates it itself.
      if (!strategy.evaluation) await strategy.sharding?.wholeModel(ctx);
      host.flush();
      e = await evaluation(ctx, strategy, data.test, config.evalBatchSize);
      if (e) observer.onEval?.({ step, epoch, ...e });
      const evalMs = performance.now() - e0;
      arrivals.exclude(evalMs);
      outcome.evalMs += evalMs;
    }
    // Every rank acts on the leader's verdict; a new best is kept while the model is whole.
    const verdict = afterEval && watch ? await actOnEvaluation({ ctx, strategy, spec, keeper: guards.best, watch }, step, e, false, outcome) : null;
    if (evaluates && !strategy.evaluation) strategy.sharding?.shardModel(ctx);
    if (verdict?.stop) {
      // Stopped early right after an evaluation: the model is the one just evaluated, not evaluated again.
      lastEval = { result: e };
      break;
    }
    if (samples?.due(step)) {
      // Like an evaluation: the leader's time out of training, which the others wait out at their next step.
      afterEval = step < totalSteps;
      if (isLeader(strategy)) {
        await unsettled.settle();
        const s0 = performance.now();
        host.flush();
        observer.onSample?.(await samples.take(model, step, precision));
        arrivals.exclude(performance.now() - s0);
        outcome.evalMs += performance.now() - s0;
      }
    }
  }
  await unsettled.settle();
  // The leader evaluates and saves the whole model (a sharded one is gathered there: after the
  // evaluation when the strategy evaluates it itself, so the two never add up; and only when asked: wholeModelAtEnd).
  if (!strategy.evaluation) await strategy.sharding?.wholeModel(ctx);
  host.flush();
  outcome.finalEval = lastEval ? lastEval.result : await evaluation(ctx, strategy, data.test, config.evalBatchSize);
  if (strategy.evaluation && guards.wholeModelAtEnd !== false) await strategy.sharding?.wholeModel(ctx);
  // The epoch of the last step taken (maxSteps may end the run before the last epoch).
  if (outcome.finalEval && !lastEval) observer.onEval?.({ step, epoch: lastEpoch, ...outcome.finalEval });
  // The final evaluation may be the best (the Trainer evaluates at the end too).
  if (watch && !lastEval) await actOnEvaluation({ ctx, strategy, spec, keeper: guards.best, watch }, step, outcome.finalEval, true, outcome);
  if (watch) outcome.best = watch.best;
  observer.onEnd?.();
  return outcome;
}

/** How the LR schedule changes at the resumed step when this run plans another length than the checkpoint's (undefined: it does not). */
function rescheduled(config: TrainConfig, resumed: Restored, totalSteps: number): Rescheduled | undefined {
  const planned = resumed.plannedSteps;
  if (planned === undefined || planned === totalSteps) return undefined;
  const lrAt = (steps: number): number => makeSchedule({ name: config.schedule, lr: config.lr, totalSteps: steps, warmupSteps: config.warmupSteps, minLr: config.minLr, decaySteps: config.decaySteps }).lrAt(resumed.position.step);
  const [lrBefore, lrAfter] = [lrAt(planned), lrAt(totalSteps)];
  return lrBefore === lrAfter ? undefined : { plannedSteps: planned, totalSteps, lrBefore, lrAfter };
}

/** Evaluations every --eval-every steps; with none given, a watched run evaluates at each epoch's end. */
function evalDue(config: TrainConfig, plan: StepPlan, step: number, watched: boolean): boolean {
  if (config.evalEvery > 0) return step % config.evalEvery === 0;
  return watched && (step - plan.offset) % plan.numBatches === 0;
}

/** What the strategy keeps in rank 0's checkpoint, for Checkpointer.afterStep. */
function checkpointState(strategy: Strategy): (() => Record<string, unknown>) | undefined {
  const c = strategy.checkpointing;
  return c?.checkpointState && (() => c.checkpointState!());
}

/**
 * Only the leader (rank 0, or the strategy's leader) evaluates, on the whole test set — the same
 * evaluation as a single process — and reports it; the others go on to their next step instead of
 * repeating it (under load balancing a slow rank's evaluation would hold everyone up). A strategy
 * with an evaluation of its own runs it on every rank; null where this rank reports none.
 */
async function evaluation(ctx: StrategyContext, strategy: Strategy, test: Dataset, batchSize: number): Promise<EvalResult | null> {
  if (strategy.evaluation) return strategy.evaluation.evaluate(ctx, test, batchSize);
  return isLeader(strategy) ? evaluate(ctx.model, test, batchSize) : null;
}

async function trainStep(
  ctx: StrategyContext, strategy: Strategy, schedule: LrSchedule, config: TrainConfig, data: Dataset, batch: AnyBatch | null,
  step: number, epoch: number, faults?: FaultInjector, lrStep = step,
): Promise<{ record: StepRecord | null; stop: boolean; settled?: Promise<void> }> {
  const { model, optimizer } = ctx;
  // What the strategy takes on the host (a GPU arena's gradients or parameters) goes back to the
  // device after each of its hooks, before the next kernel touches the arena (host_arena.ts).
  const host = hostArena(model.arena());
  const t0 = performance.now();
  model.zeroGrad();
  // A process that sends nothing reads its gradients' health one step later, with the loss, where
  // reading them would wait on the device (memory the host does not address: a GPU's).
  const defer = strategy.gradients?.sendsNothing === true && !faults && mappedMemory(model.arena().grads) === undefined;
  let healthLater: Promise<void> | undefined;
  const work: StepWork = {
    data, batch, microSize: config.batchSize, step, lrStep, faultsInjected: faults !== undefined,
    beforeExchange: async () => {
      if (faults) faults.beforeCommunication(step, await host.grads());
      const t1 = performance.now();
      // Before any gradient leaves the process: a NaN is caught here, naming the rank (monitors.ts).
      if (defer) healthLater = ctx.monitors?.healthLater(step, model.arena().grads);
      else await ctx.monitors?.beforeCommunication(step, t1 - t0, faults ? host.gradStorageNow() : model.arena().grads);
      return t1;
    },
  };
  const reduced = await strategy.runStep(ctx, work);
  if (reduced.regrouped || reduced.stop) {
    host.flush();
    await healthLater;
    if (reduced.lossLater) await reduced.lossLater;
    return { record: null, stop: reduced.stop === true };
  }
  const t1 = reduced.exchangeStart;
  if (faults) faults.afterCommunication(step, await host.grads());
  host.flush();
  const t2 = performance.now();
  const layerGradNorms = config.trackGradients ? await perLayerNorms(model) : undefined;
  const gradNorm = config.clipGradNorm > 0
    ? await clipGradNorm(model.arena().grads, config.clipGradNorm, reduced.gradNorm)
    : layerGradNorms && Math.hypot(...Object.values(layerGradNorms));
  optimizer.lr = schedule.lrAt(lrStep);
  let update: UpdateResult | null = null;
  if (strategy.update) update = await strategy.update.applyUpdate(ctx, step);
  else optimizer.step();
  host.flush();
  const t3 = performance.now();
  await strategy.afterStep(ctx, step);
  host.flush();
  const t4 = performance.now();
  // Compute is everything in the step that was not communication or waiting for peers.
  const strategyOverhead = t2 - t1 - reduced.commMs - reduced.waitMs;
  const updateComm = update ? update.commMs + update.waitMs : 0;
  const info = reduced.info || update?.info ? { ...reduced.info, ...update?.info } : undefined;
  const record: StepRecord = {
    step, epoch, rank: strategy.rank, loss: reduced.loss, samples: reduced.samples, lr: optimizer.lr,
    computeMs: t1 - t0 + strategyOverhead + (t3 - t2 - updateComm),
    commMs: reduced.commMs + (update?.commMs ?? 0) + (t4 - t3),
    waitMs: reduced.waitMs + (update?.waitMs ?? 0), gradNorm, layerGradNorms, info, time: Date.now(),
    marks: {
      start: wall(t0), reduce: wall(t1), optimizer: wall(t2), afterStep: wall(t3), end: wall(t4),
      exchange: { waitMs: reduced.waitMs, commMs: reduced.commMs },
      ...(reduced.buckets ? { buckets: reduced.buckets } : {}),
      ...(update ? { update: { waitMs: update.waitMs, commMs: update.commMs } } : {}),
    },
  };
  const stop = update?.stop === true;
  if (!healthLater && !reduced.lossLater) {
    if (batch) ctx.monitors?.afterStep(step, reduced.loss);
    return { record, stop };
  }
  const later = reduced.lossLater;
  const settled = (async () => {
    await healthLater;
    if (later) record.loss = await later;
    if (batch) ctx.monitors?.afterStep(step, record.loss);
  })();
  // Awaited by the loop one step later; until then a failure must not count as unhandled.
  settled.catch(() => {});
  return { record, stop, settled };
}

/** L2 norm of each parameter's gradient, by arena entry (e.g. "fc1.weight"); a GPU's are reduced there and read together. */
async function perLayerNorms(model: Module): Promise<Record<string, number>> {
  const arena = model.arena();
  const sums = arena.entries.map((e) => sumOfSquares(arena.grads.view(e.offset, e.size)));
  const values = await Promise.all(sums.map((s) => s.read()));
  return Object.fromEntries(arena.entries.map((e, i) => [e.name, Math.sqrt(values[i])]));
}


/**
 * Moves the model to the device this process trains on (train/engine/device.ts) and returns that device.
 * A strategy that builds its own model (a shard of it) places it on ModelBuildContext.device
 * itself (ZeRO), or has it moved there as a whole (tensor and pipeline parallelism:
 * Strategy.modelBuilder.buildsDeviceModel); any other is refused on a GPU. A process that keeps its model in
 * host memory (Strategy.hostOnly) stays on the cpu when it computes nothing (a parameter server)
 * and is refused otherwise.
 */
function placeModel(model: Module, device: Device, strategy: Strategy): Device {
  // Memory the host addresses (the cpu's) is where models are built and where every strategy can
  // read its values: nothing to move there, nothing to refuse.
  if (deviceMemory(device).hostMemory) return device;
  if (strategy.modelBuilder && !strategy.modelBuilder.buildsDeviceModel) {
    if (model.arena().device === device) return device;
    throw new SmolError('BAD_FLAGS', `--device gpu: the ${strategy.name} strategy trains on the cpu only (it shards the model and reads its shards synchronously); train with --device cpu`);
  }
  if (strategy.hostOnly) {
    if (strategy.dataShard?.compute !== false) throw new SmolError('BAD_FLAGS', `--device gpu: ${strategy.name} rank ${strategy.rank} cannot train on the GPU: ${strategy.hostOnly}; train it with --device cpu`);
    process.stderr.write(`smolcluster: rank ${strategy.rank} (${strategy.name}) stays on the cpu: ${strategy.hostOnly}\n`);
    return CPU;
  }
  model.to(device);
  return device;
}

/**
 * The step the loop has not recorded yet because its loss (and gradient health) is still being
 * read from the device. `settle` submits what was recorded since — the next step — so the device
 * has work while the host waits, then awaits the read and books the step; the wait counts as the
 * held step's compute time (the device was computing it), so the records' times still add up to
 * the run's.
 */
class UnsettledStep {
  private held: { record: StepRecord; settled: Promise<void>; book: () => void } | null = null;

  constructor(private readonly device: Device) {}

  hold(record: StepRecord, settled: Promise<void>, book: () => void): void {
    if (this.held) throw new Error('training loop: a step is held while the one before it is unsettled');
    this.held = { record, settled, book };
  }

  async settle(): Promise<void> {
    const held = this.held;
    if (!held) return;
    this.held = null;
    const w0 = performance.now();
    deviceMemory(this.device).submit?.(); // a device that queues work starts it (the cpu has nothing queued)
    await held.settled;
    held.record.computeMs += performance.now() - w0;
    held.book();
  }
}

/** A performance.now() reading as ms since the epoch. */
function wall(t: number): number {
  return performance.timeOrigin + t;
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

