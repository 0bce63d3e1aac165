/**
 * ZeRO (--zero 1|2|3) as a strategy that owns the step: synchronous data parallelism with the same
 * math as allreduce, where each rank keeps only its shard of the model state (src/parallel/zero/).
 *
 *   stage 1: gradients reduce-scattered (in buckets, during backward with --overlap), the optimizer
 *            steps the rank's shard only, the updated shards all-gathered after the step.
 *   stage 2: the same exchange; a gradient lives per tensor from backward until its bucket is
 *            reduce-scattered (after backward, or as backward finishes it with --overlap), and the
 *            rank keeps only its shard's gradient. With --grad-accum every micro-batch
 *            reduce-scatters (into the shard, summed), as FSDP does.
 *   stage 3: parameters sharded too; every layer group is gathered before its forward and backward
 *            and dropped after (parallel/zero/staged_step.ts); no all-gather after the step.
 *
 * As in allreduce, each rank's gradient is weighted by what its loss is a mean over, and the health
 * of every rank rides in one small all-reduce ([loss·w, w, health rows]) before the division by the
 * total weight. Clipping uses the global norm: each shard's sum of squares, summed over the ranks.
 * Checkpoints are per rank (rank-<r>/: the shard and its optimizer state, with the shard's place).
 *
 * A rank on a GPU (ModelBuildContext.device) keeps its shard, gradients, optimizer state and
 * (stages 1, 2) full parameters there: forward, backward and its optimizer step run on the device;
 * what the collectives send is read back (awaited) and what they bring is written back
 * (ShardedModel). Ranks on different devices hold the same parameters: every value of the model
 * comes from the one rank that owns its shard.
 */
import { performance } from 'node:perf_hooks';
import type { LoraBaseDtype } from '../../config/options/lora.js';
import type { ProcessGroup } from '../../comm/process_group.js';
import type { Dataset } from '../../data/dataset.js';
import type { EvalResult } from '../../metrics/records.js';
import type { NamedBuffers } from '../../nn/checkpoint.js';
import { type ModelSpec, createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { openInitRanges } from '../../nn/interchange/init_ranges.js';
import { layerListOf } from '../../nn/layer_list.js';
import { buildDeferred } from '../../tensor/deferred_init.js';
import { layerGroups } from '../../parallel/zero/layer_groups.js';
import { type ModelStateBytes, type ParameterValues, ShardedModel, type ZeroStage, ownValues } from '../../parallel/zero/sharded_model.js';
import { isAdapterParameter } from '../../nn/lora/names.js';
import { type FrozenGroups, StagedStep } from '../../parallel/zero/staged_step.js';
import { shardFrozen } from '../../parallel/zero/frozen_groups.js';
import { loraLayers } from '../../nn/lora/apply.js';
import { backward, backwardAsync } from '../../tensor/autograd.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { sumOfSquares } from '../../tensor/scalar.js';
import { SmolError } from '../../util/errors.js';
import { type Bucket, type BucketSizes, DDP_BUCKETS, planBuckets } from '../exchange/buckets.js';
import { MicroBatchLoss, hostScalar, microBatchPlan, type LocalGradient } from '../loop/micro_batches.js';
import { EVAL_BYTES, evalResult, evaluate } from '../loop/evaluate.js';
import { layeredEvaluationLoop } from '../loop/layered_evaluation.js';
import { HEALTH_WIDTH } from '../loop/monitors.js';
import { batchInput, batchLoss, trainingLoss } from '../loop/objective.js';
import type { StepOutcome, StepWork } from '../loop/step.js';
import type { Checkpointing, Evaluation, ModelBuildContext, ModelBuilder, ModelSharding, Strategy, StrategyContext } from './strategy.js';
import { CPU } from '../../tensor/storage.js';
import { DivergenceError } from './allreduce.js';
import { BucketSends } from './zero_buckets.js';
import type { Restored } from '../run/checkpoints.js';
import { restoreResharded, writeManifest } from '../run/zero_checkpoints.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';

export interface ZeroStrategyOptions {
  stage: ZeroStage;
  /** Gradient bucket caps (default torch DDP's); one cap for every bucket with `bucketFloats` (tests). */
  buckets?: BucketSizes;
  bucketFloats?: number;
  /** Stages 1 and 2: reduce-scatter each bucket as soon as backward has produced it. */
  overlap?: boolean;
  /** Stages 1 and 2: compare parameter checksums across ranks every K steps (0: never). */
  checksumEvery?: number;
}

export class ZeroStrategy implements Strategy, ModelBuilder, Checkpointing, ModelSharding, Evaluation {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly modelBuilder: ModelBuilder = this;
  readonly checkpointing: Checkpointing = this;
  readonly sharding: ModelSharding = this;
  readonly evaluation: Evaluation = this;
  readonly rank: number;
  readonly worldSize: number;
  readonly sharesHealth = true;
  /** --init is read by ranges while the model is built (buildModel). */
  readonly loadsInit = true;
  /** LoRA and --freeze: frozen parameters are outside the trained shards; stages 1, 2 hold them whole, stage 3 shards them too (frozen_shards.ts). */
  readonly preparesModel = true;
  readonly stage: ZeroStage;
  private readonly overlap: boolean;
  private readonly bucketSizes: BucketSizes;
  private readonly checksumEvery: number;
  private readonly stats: Float32Array;
  private sharded: ShardedModel | null = null;
  private buckets: Bucket[] = [];
  private staged: StagedStep | null = null;
  /** Stage 3: the frozen parameters' shards (LoRA's base, --freeze's), gathered beside the trained ones. */
  private frozen: FrozenGroups[] = [];
  /** Stage 3: the largest micro-batch a step has run on this rank (bounds the evaluation's memory). */
  private trainingSamples: number | undefined;
  private bytesMark = 0;
  /** NaN / ±Inf values this rank sent this step. */
  private nonFinite = 0;
  /** [stage, rank, world, start, end, total]: the checkpoint's record of this rank's shard. */
  private shardRecord: Float32Array | null = null;

  constructor(private readonly group: ProcessGroup, opts: ZeroStrategyOptions) {
    if (![1, 2, 3].includes(opts.stage)) throw new Error(`--zero ${opts.stage}: the stage must be 1, 2 or 3`);
    this.stage = opts.stage;
    this.rank = group.rank;
    this.worldSize = group.size;
    this.overlap = opts.overlap === true;
    this.bucketSizes = opts.bucketFloats !== undefined ? { capFloats: opts.bucketFloats, firstCapFloats: opts.bucketFloats } : opts.buckets ?? DDP_BUCKETS;
    this.checksumEvery = opts.checksumEvery ?? 100;
    this.stats = new Float32Array(2 + HEALTH_WIDTH * group.size);
  }

  get name(): string {
    return `allreduce+zero${this.stage}`;
  }

  /**
   * The model from the run's seed on every rank, built deferred (tensor/deferred_init.ts):
   * this rank makes only the values it keeps (stage 3: its shard), or reads only those from
   * --init's file, on the run's device (its buffers moved there too).
   */
  async buildModel(spec: ModelSpec, seed: number, modelName?: string, run?: Pick<ModelBuildContext, 'device' | 'init' | 'prepare' | 'loraBaseDtype'>): Promise<Module> {
    // Adapters put on and parameters frozen inside the deferred build: their values are recipes too (an --adapter's, host values).
    const model = buildDeferred(() => {
      const m = createModel(spec, seed);
      run?.prepare?.(m);
      return m;
    });
    const stages = this.stage === 3 ? layerListOf(model) : null;
    if (this.stage === 3 && !stages) throw new Error(`--zero 3: model ${modelName ?? spec.type} has no layer list (GPT-2, BERT, the MLP and the CNN have); use --zero 1 or 2`);
    const device = run?.device ?? CPU;
    const file = run?.init ? openInitRanges(run.init, model, spec) : null;
    try {
      // The base's file holds no adapters: theirs are the model's own (the seed's, or an --adapter's).
      const values: ParameterValues | undefined = file ? (name, p, from, to) => (isAdapterParameter(name) ? ownValues(name, p, from, to) : file.read(name, p.shape, from, to)) : undefined;
      // ZeRO-3 shards the frozen base too (before the trained parameters, which hold the rest whole).
      this.frozen = stages ? await shardFrozen(model, this.group, device, values ?? ownValues, stages, adaptedWeights(model, run?.loraBaseDtype)) : [];
      this.sharded = await ShardedModel.build(model, this.group, this.stage, device, values);
      for (const f of this.frozen) f.shards.collectives = this.sharded.collectives;
      file?.loadBuffers(model);
    } finally {
      file?.close();
    }
    model.to(device); // the buffers to the run's device (nothing moves on the cpu)
    this.buckets = planBuckets(this.sharded.layout, this.bucketSizes);
    if (stages) {
      const { groups, byStage } = layerGroups(stages, this.sharded.layout);
      this.staged = new StagedStep(this.sharded, stages, groups, byStage, (values) => this.counted(values), this.frozen);
    }
    return model;
  }

  private model(): ShardedModel {
    if (!this.sharded) throw new SmolError('NOT_SET_UP', `--zero ${this.stage}: the loop did not build the model through the strategy (Strategy.modelBuilder.buildModel)`);
    return this.sharded;
  }

  /** This rank's [start, end) of the flat arena. */
  shardRange(): readonly [number, number] {
    return this.model().range;
  }

  /** Bytes of frozen parameters this rank keeps between steps under stage 3 (its shards of them); 0 when none are sharded. */
  frozenShardBytes(): number {
    return this.frozen.reduce((n, f) => n + f.shards.shardBytes, 0);
  }

  /** Model-state bytes this rank holds now (parameters, gradients, optimizer state). */
  stateBytes(ctx: StrategyContext): ModelStateBytes {
    return this.model().stateBytes(ctx.optimizer);
  }

  /** Every rank's checkpoint is its own shard; the buffer records where the shard lies (checked on resume). */
  checkpointBuffers(): NamedBuffers {
    const s = this.model();
    this.shardRecord ??= Float32Array.of(this.stage, this.rank, this.worldSize, s.range[0], s.range[1], s.plan.total);
    return [['zero.shard', this.shardRecord]];
  }

  /** The folder's zero-manifest.json: world size, stage and every rank's range (zero_checkpoints.ts). */
  checkpointManifest(dir: string, run: string): void {
    writeManifest(dir, this.model(), run);
  }

  /** A checkpoint of another world size: this rank's new range copied out of the old shards. */
  restoreResharded(dir: string, model: Module, architecture: unknown, optimizer: Optimizer, run: string, totalSteps: number): Restored | null {
    return restoreResharded(dir, this.model(), model, architecture, optimizer, run, totalSteps);
  }

  /** On a resume from this rank's own file: the shard it held must be the one this rank holds now. */
  private checkResumedShard(): void {
    const s = this.model();
    const [stage, rank, world, start, end, total] = this.shardRecord ?? [];
    if (this.shardRecord && (rank !== this.rank || world !== this.worldSize || start !== s.range[0] || end !== s.range[1] || total !== s.plan.total || stage !== this.stage)) {
      throw new Error(`--zero ${this.stage}: the resumed checkpoint holds rank ${rank}'s ZeRO-${stage} shard of ${world} ([${start}, ${end})), not rank ${this.rank}'s ([${s.range[0]}, ${s.range[1]}))`);
    }
  }

  async setup(ctx: StrategyContext): Promise<void> {
    const s = this.model();
    if ((ctx.startStep ?? 0) > 0) this.checkResumedShard();
    if (ctx.model.arena() !== s.shard) throw new Error(`--zero ${this.stage}: the model's arena is not this rank's shard`);
    // A resumed shard is each rank's own: the full parameters are whole again once every shard is gathered.
    if (this.stage < 3) {
      await s.allGatherParams();
      await this.verifyChecksums(ctx.startStep ?? 0);
    }
    this.bytesMark = this.group.bytesSent;
  }

  async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    const local = this.stage === 3 ? await this.stagedForwardBackward(work) : await this.forwardBackward(ctx, work);
    const exchangeStart = local.exchangeStart;
    const t1 = performance.now();
    // [loss·w, w, health rows]: completes once every rank is done with its backward (the wait).
    this.stats.fill(0);
    this.stats[0] = local.weight > 0 ? local.loss * local.weight : 0;
    this.stats[1] = local.weight;
    const health = this.stats.subarray(2);
    ctx.monitors?.fillHealth(health);
    // The monitors saw this rank's shard only: the values it sent (counted as they left) name the rank a NaN came from.
    const row = this.rank * HEALTH_WIDTH + 1;
    health[row] = Math.max(health[row], this.nonFinite);
    this.nonFinite = 0;
    await this.group.allReduce(this.stats, { op: 'sum' });
    const t2 = performance.now();
    const sent = this.stage > 1 || this.overlap;
    ctx.monitors?.checkHealth(work.step, health, undefined, sent);
    const shard = this.model().shard.grads;
    const total = this.stats[1];
    if (total > 0 && total !== 1 && shard.size > 0) kernelsFor(shard).affine(shard.buffer, 1 / total, 0, shard.buffer);
    const gradNorm = await this.gradNorm();
    const bytes = this.group.bytesSent - this.bytesMark;
    this.bytesMark += bytes;
    const t3 = performance.now();
    return {
      loss: this.stats[0] / total, samples: local.samples, exchangeStart, gradNorm,
      waitMs: t2 - t1, commMs: t1 - exchangeStart + (t3 - t2), info: { bytes_sent: bytes, ...this.memoryInfo(ctx) },
    };
  }

  /**
   * What this rank holds, measured: the model state it keeps between steps (the storages'
   * byteLength), stage 3's most gathered parameters alive at once, and the process's peak RSS.
   */
  private memoryInfo(ctx: StrategyContext): Record<string, number> {
    const s = this.model();
    return {
      zero_state_bytes: s.stateBytes(ctx.optimizer).total,
      ...(this.stage === 3 ? { zero_gathered_peak_bytes: 4 * s.peakGatheredFloats, zero_frozen_bytes: this.frozenShardBytes() } : {}),
      peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    };
  }

  /** The global L2 norm of the reduced gradient: each shard's sum of squares, summed over ranks (one float). */
  private async gradNorm(): Promise<number> {
    const shard = this.model().shard.grads;
    const squares = shard.size > 0 ? sumOfSquares(shard) : null;
    const sum = Float32Array.of(squares ? await squares.read() : 0);
    await this.group.allReduce(sum, { op: 'sum' });
    return Math.sqrt(sum[0]);
  }

  /** Stages 1 and 2: forward and backward of the whole model, gradients reduce-scattered in buckets. */
  private async forwardBackward(ctx: StrategyContext, work: StepWork): Promise<LocalGradient & { exchangeStart: number }> {
    const s = this.model();
    s.zeroFullGradients();
    // Each micro-batch's loss back-propagated with its weight as the seed: the sum over ranks is then divided by the total weight.
    const mean = new MicroBatchLoss();
    let exchangeStart = NaN;
    const withWeight = microBatchPlan(work.data, work.batch, work.microSize).filter(({ weight: w }) => w > 0);
    for (const [k, { micro, weight: w }] of withWeight.entries()) {
      const lastMicro = k === withWeight.length - 1;
      // Stage 1 sends once, the summed gradient of the last micro-batch; stage 2 sends every micro-batch's.
      const sends = this.stage === 2 || lastMicro;
      const loss = trainingLoss(work.data, ctx.model.forward(batchInput(work.data, micro, s.shard.device)), micro);
      const exchange = sends ? new BucketSends(this.buckets, s.tensors, (b) => this.reduceBucket(b)) : null;
      // With --overlap each bucket leaves as backward finishes it (stage 2: its gradients are dropped then).
      if (exchange && this.overlap && !work.faultsInjected) await backwardAsync(loss, Float32Array.of(w), exchange.hooks());
      else backward(loss, Float32Array.of(w));
      mean.add(await hostScalar(loss), w);
      if (exchange) {
        if (lastMicro) exchangeStart = await work.beforeExchange();
        await exchange.finish();
      }
    }
    // No batch, or nothing scored: this rank still takes its part in every reduce-scatter (of zeros).
    if (withWeight.length === 0) {
      exchangeStart = await work.beforeExchange();
      await new BucketSends(this.buckets, s.tensors, (b) => this.reduceBucket(b)).finish();
    }
    return { loss: mean.mean, samples: work.batch?.size ?? 0, weight: mean.weight, exchangeStart };
  }

  /** One bucket's reduce-scatter: stage 1 from the whole gradient arena, stage 2 from the tensors' gradients (dropped). */
  private reduceBucket(b: Bucket): Promise<void> {
    const s = this.model();
    if (this.stage === 1) return s.reduceScatter(b.start, b.end, this.counted(s.fullGradients(b.start, b.end)), false);
    const first = Math.min(...b.entries);
    const last = Math.max(...b.entries);
    const grads = s.takeGradients(first, last);
    return s.reduceScatter(grads.start, grads.end, this.counted(grads.values), true, true);
  }

  /** Counts the NaN / ±Inf values of a gradient about to leave (the health row's count); a device's once read. */
  private counted<V extends Float32Array | Promise<Float32Array>>(values: V): V {
    if (!(values instanceof Float32Array)) return values.then((v) => this.counted(v)) as V;
    let probe = 0;
    for (let i = 0; i < values.length; i++) probe += values[i] * 0; // NaN once any value is not finite
    if (Number.isNaN(probe)) for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) this.nonFinite++;
    return values;
  }

  /** Stage 3: each micro-batch through the staged step (gathers, cut backward, reduce-scatters). */
  private async stagedForwardBackward(work: StepWork): Promise<LocalGradient & { exchangeStart: number }> {
    const staged = this.staged!;
    const micros = microBatchPlan(work.data, work.batch, work.microSize);
    if (micros.length === 0) throw new Error(`--zero 3: rank ${this.rank} has no batch at step ${work.step}; every rank gathers the layers together, so every rank needs samples (no empty shares)`);
    const mean = new MicroBatchLoss();
    for (const { micro, weight: w } of micros) {
      // A micro-batch that scores nothing still runs: the gathers and reduce-scatters are collective.
      this.trainingSamples = Math.max(this.trainingSamples ?? 0, micro.size);
      const loss = await staged.run(batchInput(work.data, micro, this.model().shard.device), (out) => batchLoss(work.data, out, micro), Float32Array.of(w));
      if (w > 0) mean.add(await hostScalar(loss), w);
    }
    const exchangeStart = await work.beforeExchange();
    return { loss: mean.mean, samples: work.batch?.size ?? 0, weight: mean.weight, exchangeStart };
  }

  /** Stages 1 and 2: the updated shards back into every rank's full parameters; then the checksums every K steps. */
  async afterStep(ctx: StrategyContext, step: number): Promise<void> {
    if (this.stage === 3) return;
    await this.model().allGatherParams();
    if (this.checksumEvery > 0 && (step + 1) % this.checksumEvery === 0) await this.verifyChecksums(step + 1);
  }

  /**
   * The test set through the model. Stages 1 and 2: the leader's forward of its whole parameters.
   * Stage 3: every rank takes part in every layer group's gather anyway, so each evaluates its
   * share of the test set layer-major (layeredEvaluationLoop: each group gathered once per pass over
   * many chunks, then dropped), and the ranks' sums are added up. One process's evaluation budget is
   * split over the ranks, so the group holds what one process would, each rank 1/N of it; no rank
   * holds the whole model.
   * The result on rank 0, null elsewhere.
   */
  async evaluate(ctx: StrategyContext, data: Dataset, batchSize: number): Promise<EvalResult | null> {
    if (this.stage < 3) return this.rank === 0 ? evaluate(ctx.model, data, batchSize) : null;
    const device = this.model().shard.device;
    const share = { rank: this.rank, count: this.worldSize, allGather: (values: Float32Array) => this.group.allGather(values) };
    const sums = await layeredEvaluationLoop(ctx.model, data, batchSize, (chunks, run) => this.staged!.forwardPass(chunks.map((c) => batchInput(data, c, device)), run), share, { bytes: EVAL_BYTES / this.worldSize, trainingSamples: this.trainingSamples });
    return this.rank === 0 ? evalResult(data, sums) : null;
  }

  /** The whole model on rank 0, for --save (stage 3 sends the shards there; the loop calls it after the final evaluation). */
  async wholeModel(ctx: StrategyContext): Promise<void> {
    await this.model().gatherTo(ctx.model, 0);
    for (const f of this.frozen) await f.shards.gatherTo(0);
  }

  /** Undoes wholeModel: rank 0's model is its shard again. */
  shardModel(ctx: StrategyContext): void {
    this.model().reshard(ctx.model);
    for (const f of this.frozen) f.shards.reshard();
  }

  private verifyChecksums(step: number): Promise<void> {
    return verifySameParameters(this.group, this.model(), step);
  }

  async gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  /** The group belongs to whoever formed it. */
  async close(): Promise<void> {}
}

/**
 * All-gathers every rank's checksum of the full parameters (stages 1, 2: the same on every rank of
 * the group after each all-gather); a rank that differs from the group's rank 0 is named.
 */
export async function verifySameParameters(group: ProcessGroup, sharded: ShardedModel, step: number): Promise<void> {
  if (group.size === 1) return;
  const mine = new Float32Array(new Uint32Array([parseInt(await sharded.checksum(), 16)]).buffer);
  const all = new Uint32Array((await group.allGather(mine)).buffer);
  const bad = [...all.keys()].filter((r) => all[r] !== all[0]);
  if (bad.length > 0) throw new DivergenceError(bad, step, `checksums ${[...all].map((c) => c.toString(16)).join(', ')}`);
}

/** The LoRA base weights held in bf16 under --lora-base-dtype bf16 (holdBaseInBf16's), by parameter name; none otherwise. */
function adaptedWeights(model: Module, dtype: LoraBaseDtype | undefined): Set<string> {
  return new Set(dtype === 'bf16' ? loraLayers(model).map(([name]) => `${name}.weight`) : []);
}
