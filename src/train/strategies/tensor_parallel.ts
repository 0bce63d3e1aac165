/**
 * Tensor parallelism (--tensor-parallel T) as a strategy that owns the step. The world's ranks form
 * a mesh: consecutive blocks of T ranks are tensor-parallel groups (each holds one shard of the
 * model, src/parallel/sharding/), and the ranks of equal tensor-parallel rank across blocks form the
 * data-parallel groups, over which a wrapped strategy (allreduce) averages the shard's gradients.
 * Every rank of a tensor-parallel group trains on the same batch: the data is sharded over the
 * data-parallel degree (--workers ÷ T), so --batch-size stays one replica's batch.
 *
 * Each rank's checkpoint holds its own shard (Strategy.checkpointing.checkpointBuffers: files under rank-<r>/),
 * resumable at the same world size and degree. Evaluation runs the split forward on every rank of
 * the first data-parallel replica's group (Strategy.evaluation); rank 0 scores the output.
 *
 * The shard is the one definition of the model with the split projections swapped in; its forward
 * awaits the row-parallel layers' sums and autograd's backwardAsync awaits the column-parallel
 * layers' gradient sums (tensor/group_sum.ts). On a GPU the shard's arena, its forward and backward
 * live there; what crosses the group (those sums, the gradient norm's squares) is read back,
 * awaited, summed on the host and written back (parallel/sharding/group_reducer.ts).
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { Dataset } from '../../data/dataset.js';
import type { EvalResult } from '../../metrics/records.js';
import type { NamedBuffers } from '../../nn/checkpoint.js';
import type { ModelSpec } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { PendingGroup, type TensorParallelModel, buildTensorParallelModel, isTensorParallelModel, checkTensorParallel, shardLayout } from '../../parallel/sharding/index.js';
import { backwardAsync } from '../../tensor/autograd.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { evalResult, evaluationLoop } from '../loop/evaluate.js';
import { gradSquares } from '../loop/grad_squares.js';
import { hostArena } from '../boundary/host_arena.js';
import { gatherWholeModel } from '../boundary/whole_model.js';
import { MicroBatchLoss, hostScalar, microBatchPlan, type LocalGradient } from '../loop/micro_batches.js';
import { type AnyBatch, batchInput, batchLoss } from '../loop/objective.js';
import { gradientsOf } from '../loop/loop_driven.js';
import { exchange, type StepOutcome, type StepWork } from '../loop/step.js';
import type { Checkpointing, DataShard, Evaluation, Leadership, ModelBuilder, Strategy, StrategyContext } from './strategy.js';

export class TensorParallelStrategy implements Strategy, ModelBuilder, Evaluation, Checkpointing, Leadership {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly modelBuilder: ModelBuilder = this;
  readonly evaluation: Evaluation = this;
  readonly checkpointing: Checkpointing = this;
  readonly leadership: Leadership = this;
  readonly rank: number;
  readonly worldSize: number;
  readonly dataShard: DataShard;
  /** A shard or stage trains on the rank's GPU too: what crosses between ranks is read back, awaited. */
  readonly buildsDeviceModel = true;
  readonly tpRank: number;
  private tensorGroup: ProcessGroup | null = null;
  /** The sums the shard's layers make, bound to the tensor-parallel group by setup (the model is built first). */
  private readonly shardGroup: PendingGroup;
  private dataParallel: Strategy | null = null;
  private groups: ProcessGroup[] = [];
  private splitEntries: Set<string> | null = null;

  /** `dataParallel` builds the strategy that averages gradients over a data-parallel group. */
  constructor(private readonly group: ProcessGroup, readonly degree: number, private readonly buildDataParallel: (group: ProcessGroup) => Strategy, private readonly innerName = 'allreduce') {
    if (!Number.isInteger(degree) || degree < 1) throw new Error(`--tensor-parallel ${degree}: the degree must be a positive integer`);
    if (group.size % degree !== 0) throw new Error(`--tensor-parallel ${degree}: --workers ${group.size} is not a multiple of it (the data-parallel degree is workers ÷ tensor parallel)`);
    this.rank = group.rank;
    this.worldSize = group.size;
    this.tpRank = group.rank % degree;
    this.dataShard = { index: Math.floor(group.rank / degree), count: group.size / degree, compute: true };
    this.shardGroup = new PendingGroup(this.tpRank, degree);
  }

  get name(): string {
    return `${this.innerName}+tp${this.degree}`;
  }

  buildModel(spec: ModelSpec, seed: number, modelName?: string): Module {
    checkTensorParallel(spec, this.degree, modelName);
    return buildTensorParallelModel(spec, seed, this.shardGroup, modelName);
  }

  /** Splits the world into the tensor- and data-parallel groups, then sets the data-parallel strategy up. */
  async setup(ctx: StrategyContext): Promise<void> {
    const tp = await this.group.split(this.dataShard.index, this.rank, { name: 'tensor-parallel' });
    const dp = await this.group.split(this.tpRank, this.rank, { name: 'data-parallel' });
    this.groups = [tp!, dp!];
    this.tensorGroup = tp!;
    this.shardGroup.bind(tp!);
    this.dataParallel = this.buildDataParallel(dp!);
    await this.dataParallel.setup(ctx);
  }

  async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    const model = ctx.model;
    if (!isTensorParallelModel(model)) throw new Error('tensor parallel: the loop did not build the model through the strategy (Strategy.modelBuilder.buildModel)');
    if (!work.batch) throw new Error(`tensor parallel: rank ${this.rank} has no batch at step ${work.step}; every rank of a tensor-parallel group computes`);
    const local = await this.forwardBackward(model, work.data, work.batch, work.microSize);
    // The data-parallel strategy's exchange, without the monitors: its health rows are numbered by the
    // data-parallel group, the run's monitors by the world (each rank checks its own in beforeExchange).
    const outcome = await exchange({ ...ctx, monitors: undefined }, gradientsOf(this.dataParallel!), work, local);
    // A GPU arena's averaged gradients go back to the device before their norm is taken there.
    hostArena(model.arena()).flush();
    return { ...outcome, gradNorm: await this.gradNorm(model) };
  }

  /**
   * The whole model's gradient norm: the split parameters' squares summed over the group, plus the
   * replicated ones' once (they are equal on every rank). One float all-reduced per step.
   */
  private async gradNorm(model: TensorParallelModel): Promise<number> {
    const arena = model.arena();
    this.splitEntries ??= new Set([...shardLayout(model).keys()]);
    let split = 0;
    let replicated = 0;
    const squares = await gradSquares(arena);
    arena.entries.forEach((e, i) => {
      if (this.splitEntries!.has(e.name)) split += squares[i];
      else replicated += squares[i];
    });
    const sum = Float32Array.of(split);
    await this.tensorGroup!.allReduce(sum);
    return Math.sqrt(sum[0] + replicated);
  }

  /** Forward and backward of the batch in micro-batches of at most microSize, each weighted by its lossWeight (as micro_batches.ts). */
  private async forwardBackward(model: TensorParallelModel, data: Dataset, batch: AnyBatch, microSize: number): Promise<LocalGradient> {
    const device = model.arena().device;
    const micros = microBatchPlan(data, batch, microSize);
    const mean = new MicroBatchLoss();
    for (const { micro, weight: w } of micros) {
      if (w === 0) continue;
      const loss = batchLoss(data, await model.forwardAsync(batchInput(data, micro, device)), micro);
      await backwardAsync(loss, micros.length > 1 ? Float32Array.of(w) : undefined);
      mean.add(await hostScalar(loss), w);
    }
    if (micros.length > 1 && mean.weight > 0) {
      const grad = model.arena().grads;
      kernelsFor(grad).affine(grad.buffer, 1 / mean.weight, 0, grad.buffer);
    }
    return { loss: mean.mean, samples: batch.size, weight: mean.weight };
  }

  /** Each rank's shard is its own: rank-<r>/ checkpoints, with the shard's place (tensor-parallel rank, degree) to check on resume. */
  checkpointBuffers(): NamedBuffers {
    return [['tensor_parallel.shard', Float32Array.of(this.tpRank, this.degree)]] as NamedBuffers;
  }

  /**
   * The test set through the split model: every rank of the first replica's tensor-parallel group
   * runs the forward (its sums need all of them), rank 0 scores the output (replicated on every
   * rank); the other replicas skip. The result on rank 0, null elsewhere.
   */
  async evaluate(ctx: StrategyContext, data: Dataset, batchSize: number): Promise<EvalResult | null> {
    if (this.dataShard.index !== 0) return null;
    const model = ctx.model as TensorParallelModel;
    const device = model.arena().device;
    const sums = await evaluationLoop(model, data, batchSize, async (batch) => {
      // noGrad cannot span the awaits of the group's sums: the graph is built, then dropped.
      const output = (await model.forwardAsync(batchInput(data, batch, device))).detach();
      return this.rank === 0 ? output : null;
    });
    return this.rank === 0 ? evalResult(data, sums) : null;
  }

  isLeader(): boolean {
    return this.rank === 0;
  }

  /** --save: the first data-parallel replica's shards assembled on rank 0. */
  savedModel(model: Module, spec: ModelSpec): Promise<Module | null> {
    return gatherWholeModel(this.group, spec, { model, sends: this.dataShard.index === 0, tp: { rank: this.tpRank, size: this.degree, rules: shardLayout(model) } });
  }

  afterStep(ctx: StrategyContext, step: number): Promise<void> {
    return this.dataParallel!.afterStep(ctx, step);
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  async close(): Promise<void> {
    await this.dataParallel?.close();
    for (const g of this.groups) await g.close();
  }
}
