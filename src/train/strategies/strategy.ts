import type { NamedBuffers } from '../../nn/checkpoint.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { LoraBaseDtype } from '../../config/options/lora.js';
import type { Module } from '../../nn/module.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import type { Dataset } from '../../data/dataset.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Device } from '../../tensor/storage.js';
import type { BucketSpan } from '../exchange/bucketed.js';
import type { RunMonitors } from '../loop/monitors.js';
import type { AnyBatch } from '../loop/objective.js';
import type { EvalResult, StepInfo } from '../../metrics/records.js';
import type { StepOutcome, StepWork } from '../loop/step.js';
import type { Restored } from '../run/checkpoints.js';
import type { StageSplit } from '../run/memory_estimate.js';

/** One step a strategy plans: its epoch and batch (null: nothing to compute), and — when the strategy numbers the steps — its step and LR-schedule step. */
export type PlannedStep = [epoch: number, batch: AnyBatch | null, step?: number, lrStep?: number];

/** What a strategy that builds the model may look at: the data, the step's batch, the optimizer, a resumed checkpoint's state. */
export interface ModelBuildContext {
  train: Dataset;
  /** Samples of one replica's batch (--batch-size). */
  batchSize: number;
  optimizer: string;
  /** The strategy state of the checkpoint the run resumes from, read before the model exists (null: none). */
  resumedState(): Record<string, unknown> | null;
  /**
   * The device this process trains on (default the cpu). A strategy that places its model there
   * (ZeRO) returns it with its arena on this device; the loop refuses one that leaves it on the host.
   */
  device?: Device;
  /** --init's file, for a strategy that reads it while it builds (`loadsInit`: ZeRO reads its ranges only). */
  init?: string;
  /**
   * The run's fine-tuning (LoRA adapters put on, --freeze's parameters frozen), for a strategy that
   * `preparesModel`: called on the whole model as soon as it is made, before it is cut or sharded.
   */
  prepare?(model: Module): void;
  /** --lora-base-dtype: a strategy that shards the frozen base as it builds (ZeRO-3) holds the adapted weights' shards in bf16. */
  loraBaseDtype?: LoraBaseDtype;
}

/** What a strategy sees of the run. */
export interface StrategyContext {
  model: Module;
  optimizer: Optimizer;
  /** Steps this process will take (set by the loop before setup; a strategy may end the run sooner). */
  totalSteps?: number;
  /** The run's monitors (set by the loop): a strategy that `sharesHealth` feeds them every rank's health. */
  monitors?: RunMonitors;
  /**
   * Steps already taken when this process starts (a run resumed from a checkpoint; default 0). A
   * strategy's setup may set it: a restarted async-ps worker learns its position from the server.
   */
  startStep?: number;
  /** The strategy's state saved with the checkpoint this run resumed from (Strategy.checkpointing.checkpointState). */
  resumedState?: Record<string, unknown>;
}


export type { StepInfo };

/** The data a process trains on: shard `index` of `count`; `compute: false` takes the shard's steps without computing (a server that only aggregates). */
export interface DataShard {
  index: number;
  count: number;
  compute: boolean;
}

/** What `applyUpdate` did: its communication time, and whether the run ends here for this process. */
export interface UpdateResult extends CommTiming {
  stop?: boolean;
  info?: StepInfo;
}

/** Time a strategy spent communicating and waiting for others in one step, measured where it happens. */
export interface CommTiming {
  commMs: number;
  waitMs: number;
}

/**
 * How processes combine their work. The training loop is one; a strategy is a small object over it
 * (DESIGN.md "One training loop, many strategies"), shaped like Flower's abstract Strategy: a
 * required core every strategy implements, and optional behaviours, each an explicit capability
 * object grouping the members that serve one purpose. The loop asks for a capability by name
 * (`strategy.checkpointing?.`…), never for a loose method by presence.
 *
 * The core's `runStep` computes and combines one step's gradients. Most strategies take the
 * loop-driven default (step.ts LoopDrivenStrategy: the loop runs forward and backward, the strategy's
 * `gradients` capability combines them); a strategy with a schedule of its own (pipeline, ZeRO,
 * tensor parallelism) writes its own. A wrapper extends DelegatingStrategy (strategies/delegating.ts),
 * which forwards every member, so it cannot forget one.
 */
export interface Strategy {
  readonly name: string;
  readonly rank: number;
  readonly worldSize: number;
  /** Once, before the first step (e.g. make every rank start from rank 0's parameters). */
  setup(ctx: StrategyContext): Promise<void>;
  /**
   * The step's forward, backward and exchange, in whatever order the strategy needs (a pipeline's
   * 1F1B schedule with point-to-point sends, ZeRO-3 gathering each layer group's parameters before
   * its forward and backward, gradient accumulation); the loop-driven default is step.ts
   * loopDrivenStep. Either way the loop zeroes the gradients before, and after it sets the LR, clips,
   * takes the optimizer step (or `update.applyUpdate`), runs `afterStep`, records the metrics,
   * evaluates and checkpoints. The strategy calls `work.beforeExchange()` once its gradients are
   * final and before any leaves the process (injected faults, then the monitors' NaN check).
   */
  runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome>;
  /** After the optimizer step (e.g. compare parameter checksums every K steps). */
  afterStep(ctx: StrategyContext, step: number): Promise<void>;
  /** Gathers one equal-length vector from every rank (rank-major); used for per-rank totals. */
  gather(local: Float32Array): Promise<Float32Array>;
  close(): Promise<void>;

  // Declarations: facts about the strategy the loop plans with (absent: the default).
  /** The data this process trains on (default: shard `rank` of `worldSize`, computing). */
  readonly dataShard?: DataShard;
  /**
   * Why this process keeps its model in host memory whatever --device says (a parameter server
   * that only aggregates stays on the cpu; one that also trains is refused on a GPU with this
   * reason). Absent: the model goes to the process's device (train/engine/device.ts).
   */
  readonly hostOnly?: string;
  /**
   * True when the step's exchange shares every rank's health (monitors.ts) in its first exchange and
   * calls `ctx.monitors.checkHealth` before the gradients move, so a NaN on any rank stops every
   * rank at once, naming it. Otherwise each rank's monitors check only its own gradients.
   */
  readonly sharesHealth?: boolean;

  // Capabilities: optional behaviours, one object per purpose.
  /** Combines gradients computed by someone else (the loop, gradient accumulation): the loop-driven step's strategy. */
  readonly gradients?: GradientExchange;
  /** Who applies the update when the loop's optimizer.step() does not (a parameter server). */
  readonly update?: UpdateApplier;
  /** What the strategy adds to checkpoints, and how it resumes from them. */
  readonly checkpointing?: Checkpointing;
  /** Builds this process's model (absent: the whole model, nn/models createModel). */
  readonly modelBuilder?: ModelBuilder;
  /** Evaluates the model itself (absent: the leader runs evaluate.ts over the whole model). */
  readonly evaluation?: Evaluation;
  /** Makes a model whose ranks hold shards of it whole on the leader, and shards it again (ZeRO-3). */
  readonly sharding?: ModelSharding;
  /** Decides which steps this process takes (absent: its shard's batches, epoch after epoch). */
  readonly planning?: StepPlanning;
  /** Who reports the run (absent: rank 0, with nothing added to result.json). */
  readonly leadership?: Leadership;
}

/** A strategy's gradient exchange: what the loop-driven step (step.ts) calls once the local gradients are in the arena. */
export interface GradientExchange {
  /**
   * After backward, before the optimizer step: combine the gradients in the arena and the local
   * loss (the mean over this rank's `samples`). `samples` is the weight of that mean: the batch's
   * samples, or for a token task its scored tokens (objective.ts `lossWeight`), so weighting by it
   * stays exact when positions are ignored. Returns the loss every rank agrees on (the
   * global-batch mean) and the time it took.
   */
  reduceGradients(ctx: StrategyContext, localLoss: number, samples: number, step: number): Promise<ReducedGradients>;
  /**
   * Runs backward itself (absent: the step calls backward()), e.g. to send gradient buckets while
   * backward goes on (allreduce --overlap); reduceGradients then finishes the exchange. Not used
   * while faults are injected (they change the gradient before it leaves).
   */
  readonly backward?: (ctx: StrategyContext, loss: Tensor, samples: number, step: number) => Promise<void>;
  /**
   * True when nothing of a step leaves the process (one process: `local`) and reduceGradients
   * returns the local loss it is given unchanged. On a GPU the loop then neither waits for the
   * step's loss nor for its gradients' health check: both are read one step later, while the
   * device runs the next step (loop.ts, docs/GPU.md "What crosses to the host"), so its queue never
   * drains. The loss each record carries is still the one the step measured.
   */
  readonly sendsNothing?: boolean;
}

/** What reduceGradients gives back. */
export type ReducedGradients = CommTiming & { loss: number; info?: StepInfo; regrouped?: boolean; buckets?: BucketSpan[] };

/** The update a strategy applies itself. */
export interface UpdateApplier {
  /**
   * Called instead of optimizer.step(), after the loop set the LR and clipped (e.g. a parameter
   * server steps and sends the new weights; its workers load them).
   */
  applyUpdate(ctx: StrategyContext, step: number): Promise<UpdateResult>;
}

/** What a strategy keeps in checkpoints (checkpoints.ts). */
export interface Checkpointing {
  /** State of its own a checkpoint keeps (JSON, written by rank 0), handed back as ctx.resumedState on resume. */
  checkpointState?(): Record<string, unknown>;
  /**
   * When a strategy's ranks hold state of their own (DiLoCo's parameters between syncs, anchor and outer
   * momentum; error-feedback residuals), every rank then writes and resumes from its own checkpoint
   * file (checkpoints.ts), with these buffers in it. The buffers are allocated on the first call (before
   * setup, so a resume can fill them), and setup keeps what a resume restored (ctx.startStep > 0).
   */
  checkpointBuffers?(model: Module): NamedBuffers;
  /** With checkpointBuffers: what the writing rank adds to the checkpoint folder after each save (ZeRO's manifest of shards). */
  checkpointManifest?(dir: string, run: string): void;
  /**
   * With checkpointBuffers: restores from checkpoints of another world size, or null to load this
   * rank's own (checkpoints.ts RankState.reshard). `run` (here and in the manifest) names the run
   * at its global batch, whatever the world size.
   */
  restoreResharded?(dir: string, model: Module, architecture: unknown, optimizer: Optimizer, run: string, totalSteps: number): Restored | null;
  /**
   * With checkpointBuffers: checkpoints written by `savedRanks` ranks, another number than this
   * run's; the rank whose folder holds this rank's state (e.g. a pipeline stage's in another
   * number of replicas), or null to refuse.
   */
  checkpointSourceRank?(savedRanks: number): number | null;
}

/** A strategy that builds its process's model: a tensor-parallel rank builds its shard. */
export interface ModelBuilder {
  /** `modelName` is the --model name, for errors. */
  buildModel(spec: ModelSpec, seed: number, modelName?: string, run?: ModelBuildContext): Module | Promise<Module>;
  /**
   * True: the model it builds may move to the process's device (the loop moves it, like a whole
   * model), because the strategy reads what crosses between ranks asynchronously (tensor and
   * pipeline parallelism). Otherwise its model stays where it was built (ZeRO places it on
   * ModelBuildContext.device itself) and a host model is refused on a GPU.
   */
  readonly buildsDeviceModel?: boolean;
  /** True: buildModel loads ModelBuildContext.init itself, and the loop does not load it again. */
  readonly loadsInit?: boolean;
  /** True: buildModel may build over a quantized base (--init FILE.gguf, a quantized --lora-base-dtype); otherwise the loop refuses one by flag. */
  readonly takesQuantizedBase?: boolean;
  /** True: the model built holds --lora-base-dtype's quantized base already, and the loop does not quantize it again. */
  readonly quantizesBase?: boolean;
  /** A quantized base cut over stages: what a process's memory estimate divides (train/run/memory_estimate.ts). */
  readonly stageSplit?: StageSplit;
  /** True: buildModel calls ModelBuildContext.prepare (frozen parameters and adapters); otherwise the loop refuses LoRA and --freeze. */
  readonly preparesModel?: boolean;
  /**
   * For the final --save when each rank holds a part of the model (pipeline stages, tensor-parallel
   * shards): every rank calls it once after the run; the leader gets the whole model, as one process
   * holds it (train/boundary/whole_model.ts), the others null. Absent: the leader's model is whole.
   */
  savedModel?(model: Module, spec: ModelSpec): Promise<Module | null>;
}

/** A strategy's own evaluation (a split model has no synchronous forward on one rank). */
export interface Evaluation {
  /** Called on every rank at the same steps (a pipeline's stages all take part); the result on the leader, null elsewhere. */
  evaluate(ctx: StrategyContext, data: Dataset, batchSize: number): Promise<EvalResult | null>;
}

/** A model whose ranks hold only shards of it (ZeRO-3 sends them to rank 0). */
export interface ModelSharding {
  /**
   * Makes the whole model available to the leader for its evaluation and the final --save. Every
   * rank calls it at the same points: before each evaluation, and once after the last step (then
   * the run only evaluates and saves).
   */
  wholeModel(ctx: StrategyContext): Promise<void>;
  /** Undoes wholeModel after a mid-run evaluation (the leader's model is sharded again for training). */
  shardModel(ctx: StrategyContext): void;
}

/** The steps a strategy decides itself. */
export interface StepPlanning {
  /**
   * The steps this process takes (elastic: the data follows the membership, and a rollback numbers
   * steps again). A step whose exchange answers `regrouped` is abandoned: no update, no record; the
   * next planned step follows.
   */
  steps?(ctx: StrategyContext, data: Dataset, batchSize: number, epochs: number, seed: number): AsyncIterable<PlannedStep>;
  /** Steps this process takes given the steps of its shard (default: the same; an async server takes one per push). */
  stepsFor?(shardSteps: number): number;
}

/** Who writes the run's result, and what it adds. */
export interface Leadership {
  /** Whether this process writes the run's result and evaluates (default: rank 0). */
  isLeader(): boolean;
  /** Fields the leader adds to result.json (e.g. a pipeline's placement and measured bubble); called on every rank after training. */
  resultFields?(): Promise<Record<string, unknown>>;
}

/** Whether this process leads the run: writes its result and, without an evaluation of the strategy's own, evaluates. */
export function isLeader(strategy: Strategy): boolean {
  return strategy.leadership ? strategy.leadership.isLeader() : strategy.rank === 0;
}
