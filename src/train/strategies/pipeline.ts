/**
 * Pipeline parallelism (--pipeline-stages P --micro-batches M --schedule gpipe|1f1b) as a strategy
 * that owns the step. The world's ranks form a mesh: consecutive blocks of P ranks are pipelines
 * (rank r holds stage r mod P of replica ⌊r/P⌋), and the ranks holding the same stage form the
 * data-parallel groups, over which a wrapped strategy (allreduce) averages the stage's gradients.
 * Every stage of a replica reads the same batch (stage 0 its inputs, the last stage its labels):
 * the data is sharded over the W/P replicas, so --batch-size stays one replica's batch.
 *
 * Placement: at start every rank times each layer's forward and backward on one micro-batch and
 * reports its memory; the gathered table gives the same plan on every rank (parallel/pipeline/
 * placement.ts), printed by rank 0 and kept in result.json. A resumed run keeps its checkpoint's plan.
 * Over a quantized base (--init FILE.gguf, a quantized --lora-base-dtype: pipeline_quantized.ts)
 * the whole model is never built: every rank probes one block, and each holds only its stage's
 * layers of the base, so a base that fits no one machine trains over several.
 *
 * A step: the schedule's forwards and backwards over point-to-point sends (executor.ts), the tied
 * embedding's two gradients summed between its owner and its copy, the sum divided by the batch's
 * loss weight, then the data-parallel exchange. The bubble (the stages' time waiting on neighbours
 * over their step time) and the live micro-batches per stage are gathered every step.
 *
 * With --zero 1 (PipelineOptions.zero) each stage's data-parallel group shards that stage's optimizer
 * state (zero_pipeline.ts): the step reduce-scatters the stage's gradient over the group instead of
 * all-reducing it, the optimizer steps this rank's shard, and afterStep all-gathers the shards.
 *
 * A stage may train on a GPU (--device gpu on its rank): its arena and layers live there, and what
 * crosses between ranks — activations, their gradients, the tied gradient, the loss and the norm's
 * squares — is read back (awaited) and uploaded on the receiving side (executor.ts), so a GPU stage
 * and a cpu stage form one pipeline. The layers are timed for the placement on the cpu, before
 * the stage moves (measureLayers reads synchronously).
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import { BatchLoader } from '../../data/loader.js';
import type { Dataset } from '../../data/dataset.js';
import type { EvalResult } from '../../metrics/records.js';
import type { NamedBuffers } from '../../nn/checkpoint.js';
import { type ModelLayer, modelLayers } from '../../nn/layer_list.js';
import { type ModelSpec, createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { recvTensor, runStage, sendTensor, type StageWork } from '../../parallel/pipeline/executor.js';
import { measureLayers } from '../../parallel/pipeline/layer_cost.js';
import { nodeMemoryBytes } from '../../util/node_memory.js';
import { type Placement, placeStages } from '../../parallel/pipeline/placement.js';
import { type PipelineScheduleName, idealBubbleFraction, pipelineSchedule } from '../../parallel/pipeline/schedule.js';
import { PipelineStageModule, deferredModel } from '../../parallel/pipeline/stage_model.js';
import type { StageWeights } from '../../parallel/pipeline/stage_weights.js';
import type { StageSplit } from '../run/memory_estimate.js';
import type { ZeroStage } from '../../parallel/zero/sharded_model.js';
import { ShardedStage } from './zero_pipeline.js';
import { QuantizedBaseStages, quantizedBaseWeights } from './pipeline_quantized.js';
import { PendingGroup, buildTensorParallelModel, checkTensorParallel, shardLayout } from '../../parallel/sharding/index.js';
import { noGrad } from '../../tensor/autograd.js';
import { lastUse } from '../../tensor/handover.js';
import type { Tensor } from '../../tensor/tensor.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { CPU, deviceMemory, type Storage } from '../../tensor/storage.js';
import type { ParamArena } from '../../nn/arena.js';
import { evalResult, evaluationLoop } from '../loop/evaluate.js';
import { gradSquares } from '../loop/grad_squares.js';
import { hostArena } from '../boundary/host_arena.js';
import { gatherWholeModel } from '../boundary/whole_model.js';
import { microBatchPlan } from '../loop/micro_batches.js';
import { type AnyBatch, batchInput, batchLoss } from '../loop/objective.js';
import { gradientsOf } from '../loop/loop_driven.js';
import { exchange, type StepOutcome, type StepWork } from '../loop/step.js';
import type { Checkpointing, DataShard, Evaluation, Leadership, ModelBuildContext, ModelBuilder, Strategy, StrategyContext } from './strategy.js';

export interface PipelineOptions {
  stages: number;
  microBatches: number;
  schedule: PipelineScheduleName;
  /** Tensor-parallel degree inside each stage (GPT-2, BERT; default 1). */
  tensorParallel?: number;
  /** ZeRO stage 1 over each stage's data-parallel group (absent: the stage's gradients are all-reduced). */
  zero?: ZeroStage;
  /** With `zero`: compare the replicas' parameter checksums every K steps (0: never; default 100, --checksum-every). */
  checksumEvery?: number;
}

/** Tags of the messages besides the executor's: the tied gradient, evaluation activations and results. */
const TIED_TAG = 0x504b;
const EVAL_TAG = 0x504c;
const EVAL_RESULT_TAG = 0x504d;

/** Per step: Σ wait, Σ step time over the stages, and each stage's peak of live micro-batches. */
interface StepStats {
  waitMs: number;
  totalMs: number;
  peakLive: number[];
}

export class PipelineStrategy implements Strategy, ModelBuilder, Evaluation, Checkpointing, Leadership {
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
  /** LoRA and --freeze: the whole model is fine-tuned before it is cut (ModelBuildContext.prepare). */
  readonly preparesModel = true;
  readonly stage: number;
  readonly replica: number;
  readonly tpRank: number;
  readonly tp: number;
  private pipeline: ProcessGroup | null = null;
  private tensorGroup: ProcessGroup | null = null;
  /** The sums a tensor-parallel stage's layers make, bound to its group by setup (the stage is built first). */
  private readonly shardGroup: PendingGroup;
  private splitEntries: Set<string> | null = null;
  private dataParallelGroup: ProcessGroup | null = null;
  private dataParallel: Strategy | null = null;
  private placement: (Placement & { from: 'measured' | 'probed' | 'checkpoint'; layerNames: string[] }) | null = null;
  private readonly stats: StepStats[] = [];
  private model: Module | null = null;
  /** --zero 1: this rank's shard of its stage, over the stage's data-parallel group. */
  private sharded: ShardedStage | null = null;
  /** The run's fine-tuning (ModelBuildContext.prepare), for the whole model --save assembles. */
  private prepare: ((model: Module) => void) | undefined;
  /** The stage holds its layers of a quantized base (buildOverQuantizedBase): loaded and quantized as it was built. */
  private quantizedBase = false;

  constructor(private readonly group: ProcessGroup, readonly options: PipelineOptions, private readonly buildDataParallel: (group: ProcessGroup) => Strategy, private readonly innerName = 'allreduce') {
    const { stages, microBatches: micro } = options;
    if (!Number.isInteger(stages) || stages < 2) throw new Error(`--pipeline-stages ${stages}: a pipeline needs at least 2 stages`);
    if (!Number.isInteger(micro) || micro < 1) throw new Error(`--micro-batches ${micro}: must be a positive integer`);
    const tp = options.tensorParallel ?? 1;
    if (!Number.isInteger(tp) || tp < 1) throw new Error(`--tensor-parallel ${tp}: must be a positive integer`);
    if (options.zero !== undefined && options.zero !== 1) throw new Error(`--zero ${options.zero} cannot be combined with --pipeline-stages ${stages} yet (--zero 1 can)`);
    if (options.zero && tp > 1) throw new Error(`--zero 1 cannot be combined with --pipeline-stages ${stages} and --tensor-parallel ${tp} yet`);
    const block = stages * tp;
    if (group.size % block !== 0) {
      throw new Error(`--pipeline-stages ${stages}${tp > 1 ? ` × --tensor-parallel ${tp}` : ''}: --workers ${group.size} is not a multiple of ${block} (the data-parallel degree is workers ÷ ${tp > 1 ? '(stages × tensor parallel)' : 'stages'})`);
    }
    this.rank = group.rank;
    this.worldSize = group.size;
    this.tp = tp;
    this.tpRank = group.rank % tp;
    this.stage = Math.floor(group.rank / tp) % stages;
    this.replica = Math.floor(group.rank / block);
    this.dataShard = { index: this.replica, count: group.size / block, compute: true };
    this.shardGroup = new PendingGroup(this.tpRank, tp);
  }

  /** A quantized base is cut like a float one, but not split further by --tensor-parallel or sharded by --zero 1 yet. */
  get takesQuantizedBase(): boolean {
    return this.tp === 1 && this.options.zero === undefined;
  }

  /** What a process's memory estimate divides a quantized base over: this rank holds its stage of it only. */
  get stageSplit(): StageSplit | undefined {
    return this.takesQuantizedBase ? { stages: this.options.stages, microBatches: this.options.microBatches, schedule: this.options.schedule } : undefined;
  }

  /** Over a quantized base the stage was loaded (and quantized) as it was built: the loop does neither again. */
  get loadsInit(): boolean {
    return this.quantizedBase;
  }

  get quantizesBase(): boolean {
    return this.quantizedBase;
  }

  get name(): string {
    return `${this.innerName}+pp${this.options.stages}${this.tp > 1 ? `+tp${this.tp}` : ''}${this.options.zero ? `+zero${this.options.zero}` : ''}`;
  }

  private get last(): number {
    return this.options.stages - 1;
  }

  /**
   * The whole model from the seed, its layers timed on this rank, the table gathered, the plan
   * made (or taken from the checkpoint resumed), and this rank's stage kept.
   */
  async buildModel(spec: ModelSpec, seed: number, modelName = spec.type, run?: ModelBuildContext): Promise<Module> {
    if (!run) throw new Error('pipeline: the loop did not give the data to time the layers on');
    if (this.tp > 1) checkTensorParallel(spec, this.tp, modelName);
    const base = quantizedBaseWeights(run, seed);
    if (base) return this.buildOverQuantizedBase(spec, base, modelName, run);
    const full = createModel(spec, seed);
    // Adapters on and parameters frozen in the whole model, so each stage's layers carry theirs (and its arena holds what trains only).
    run.prepare?.(full);
    this.prepare = run.prepare;
    if (this.tp > 1 && full.namedParameters().some(([, p]) => !p.requiresGrad)) {
      throw new Error(`--lora-rank / --adapter / --freeze: the stages of --pipeline-stages ${this.options.stages} with --tensor-parallel ${this.tp} build their split layers themselves and take no adapters or frozen parameters yet; drop --tensor-parallel`);
    }
    const layers = modelLayers(full, modelName);
    const P = this.options.stages;
    const saved = this.takeLayers(layers, modelName, run);
    const microSize = Math.max(1, Math.ceil(run.batchSize / this.options.microBatches));
    const cost = measureLayers(layers, sampleInput(run.train, microSize), saved ? { minRepeats: 1, budgetMs: 0 } : {});
    const table = await this.group.allGather(Float32Array.of(...cost.ms, nodeMemoryBytes() / 2 ** 20));
    const width = layers.length + 1;
    const ranks = Array.from({ length: this.worldSize }, (_, r) => {
      const row = table.subarray(r * width, (r + 1) * width);
      return { layerMs: Array.from(row.subarray(0, layers.length)), memoryBytes: row[layers.length] * 2 ** 20 };
    });
    const placement = placeStages({
      ranks, stages: P, stageOf: ranks.map((_, r) => Math.floor(r / this.tp) % P), parameters: cost.parameters, activationFloats: cost.activationFloats,
      bytesPerParameter: bytesPerParameter(run.optimizer, this.options.zero ? this.dataShard.count : 1), liveMicroBatches: this.liveMicroBatches,
    });
    const [from, to] = this.adopt(placement, saved, 'measured', layers);
    // Tensor parallel inside the stage: the same model with its projections split (this rank's shard), cut at the same layers.
    const stageLayers = this.tp > 1 ? buildTensorParallelModel(spec, seed, this.shardGroup, modelName).layerList() : layers;
    const stage = new PipelineStageModule(stageLayers, from, to);
    // The timing left gradients behind: dropped without packing the arena, which the loop packs on the rank's device.
    for (const [, p] of stage.namedParameters()) p.grad = null;
    if (this.options.zero) {
      if (!deviceMemory(run.device ?? CPU).hostMemory) throw new Error(`--zero 1 with --pipeline-stages ${P}: the sharded stages train on the cpu only; train with --device cpu`);
      // The stage's arena becomes this rank's shard: the loop's optimizer is then built over the shard only.
      await this.formGroups();
      this.sharded = await ShardedStage.build(stage, this.dataParallelGroup!, this.options.checksumEvery);
    }
    return stage;
  }

  /**
   * Over a quantized base (pipeline_quantized.ts): the whole model deferred, one block probed on
   * every rank, the plan made from the gathered probes (or taken from the checkpoint resumed), and
   * only this rank's layers given their values — the base's blocks, mapped where they are a file's.
   */
  private async buildOverQuantizedBase(spec: ModelSpec, weights: StageWeights, modelName: string, run: ModelBuildContext): Promise<Module> {
    const P = this.options.stages;
    const base = new QuantizedBaseStages(spec, weights, modelName, run.prepare);
    this.prepare = run.prepare;
    this.quantizedBase = true;
    const layers = base.layers;
    const saved = this.takeLayers(layers, modelName, run);
    const micro = Math.max(1, Math.ceil(run.batchSize / this.options.microBatches));
    const tokens = sampleInput(run.train, 1).shape[1] ?? 1;
    const probe = base.probe(micro, tokens, nodeMemoryBytes(), saved ? 0 : 300);
    const table = await this.group.allGather(Float32Array.of(probe.msPerWeight * 1e9, probe.memoryBytes / 2 ** 20));
    const probes = Array.from({ length: this.worldSize }, (_, r) => ({ msPerWeight: table[2 * r] / 1e9, memoryBytes: table[2 * r + 1] * 2 ** 20 }));
    const placement = base.place(probes, {
      stages: P, stageOf: probes.map((_, r) => r % P), trainedBytes: bytesPerParameter(run.optimizer, 1), micro, tokens, liveMicroBatches: this.liveMicroBatches,
    });
    const [from, to] = this.adopt(placement, saved, 'probed', layers);
    return base.stage(from, to);
  }

  /** Checks there are layers enough to cut, records the tied weights' owners and readers, and returns a resumed run's cut (or null). */
  private takeLayers(layers: readonly ModelLayer[], modelName: string, run: ModelBuildContext): [number, number][] | null {
    const P = this.options.stages;
    if (layers.length < P) throw new Error(`--pipeline-stages ${P}: ${modelName} has ${layers.length} layers to cut (${layers.map((l) => l.name).join(', ')})`);
    this.ties = layers.flatMap((l, reader) => (l.tied ? [{ name: l.tied.name, reader, owner: ownerLayer(layers, l.tied.name) }] : []));
    return savedRanges(run.resumedState(), P, layers.length);
  }

  /** The plan kept (a resumed run's cut over it) and printed by rank 0; this rank's layers. */
  private adopt(placement: Placement, saved: [number, number][] | null, from: 'measured' | 'probed', layers: readonly ModelLayer[]): [number, number] {
    if (saved) placement.ranges = saved;
    this.placement = { ...placement, from: saved ? 'checkpoint' : from, layerNames: layers.map((l) => l.name) };
    if (this.rank === 0) process.stderr.write(describePlacement(this.placement));
    return placement.ranges[this.stage];
  }

  /** Micro-batches whose activations a stage holds at once: 1F1B at most the stages, GPipe all of them. */
  private get liveMicroBatches(): number {
    return this.options.schedule === '1f1b' ? this.options.stages : this.options.microBatches;
  }

  /**
   * Splits the world into the pipelines and the data-parallel groups (once: --zero 1 needs its
   * group while the model is built). Pipelines: one replica, one tensor-parallel rank. Data
   * parallel: one stage and tensor-parallel rank. Tensor parallel: one stage of one replica.
   */
  private async formGroups(): Promise<void> {
    if (this.pipeline) return;
    const pipeline = await this.group.split(this.replica * this.tp + this.tpRank, this.rank, { name: 'pipeline', groupTimeoutMs: this.stagePatienceMs() });
    const dataParallel = await this.group.split(this.stage * this.tp + this.tpRank, this.rank, { name: 'pipeline-data-parallel' });
    if (this.tp > 1) {
      this.tensorGroup = await this.group.split(this.replica * this.options.stages + this.stage, this.rank, { name: 'pipeline-tensor-parallel' });
      this.shardGroup.bind(this.tensorGroup!);
    }
    this.pipeline = pipeline!;
    this.dataParallelGroup = dataParallel!;
  }

  /**
   * How long a stage may wait on its neighbours: --timeout, or, where the plan's stages are slower
   * than that (an 8B base takes minutes a step on a few cores), 3 × the planned step (every stage's
   * ms per micro-batch, all micro-batches; room for checkpointing's second forward and a slow step).
   */
  private stagePatienceMs(): number {
    const planned = this.placement ? sum(this.placement.stageMs) * this.options.microBatches : 0;
    return Math.max(this.group.timeoutMs, 3 * planned);
  }

  /** Forms the groups, then sets the data-parallel strategy up (--zero 1: gathers the shards into the stage's parameters). */
  async setup(ctx: StrategyContext): Promise<void> {
    this.model = ctx.model;
    await this.formGroups();
    if (this.sharded) return this.sharded.start(ctx.model, ctx.startStep ?? 0);
    this.dataParallel = this.buildDataParallel(this.dataParallelGroup!);
    await this.dataParallel.setup(ctx);
  }

  async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    const model = stageOf(ctx.model);
    const { batch, data } = work;
    if (!batch) throw new Error(`pipeline: rank ${this.rank} has no batch at step ${work.step}; every stage reads its replica's batch`);
    const micros = microBatchPlan(data, batch, Math.max(1, Math.ceil(batch.size / this.options.microBatches)));
    const device = model.arena().device;
    // The loop zeroed the module's arena, which under --zero 1 is the shard only.
    this.sharded?.zeroGradients();
    const stageWork: StageWork = {
      device,
      // A tensor-parallel stage's layers wait on their group's sums; the others run at once.
      forward: (x) => model.run(x),
      input: (k) => batchInput(data, micros[k].micro, device),
      // The logits are handed over: the loss writes its probabilities over them (ops/loss.ts), one logits-sized buffer a micro-batch, not two.
      loss: (output, k) => ({ loss: batchLoss(data, lastUse(output), micros[k].micro), weight: micros[k].weight }),
    };
    const actions = pipelineSchedule(this.options.schedule, this.stage, this.options.stages, micros.length);
    const ran = await runStage(this.pipeline!, stageWork, actions);
    const weight = micros.reduce((w, m) => w + m.weight, 0);
    const tiedMs = await this.sumTiedGradients(model);
    // Under --zero 1 the sum is divided after the reduce-scatter, by the weight of every replica's batch.
    if (weight > 0 && !this.sharded) {
      const grad = model.arena().grads;
      kernelsFor(grad).affine(grad.buffer, 1 / weight, 0, grad.buffer);
    }
    // Every stage learns the replica's loss and each stage's wait, time and live micro-batches.
    const all = await this.pipeline!.allGather(Float32Array.of(ran.lossSum, ran.waitMs, ran.totalMs, ran.peakLive));
    const column = (c: number): number[] => Array.from({ length: this.options.stages }, (_, s) => all[s * 4 + c]);
    const lossSum = column(0).reduce((a, b) => a + b, 0);
    const stats: StepStats = { waitMs: sum(column(1)), totalMs: sum(column(2)), peakLive: column(3) };
    this.stats.push(stats);
    const local = { loss: weight > 0 ? lossSum / weight : NaN, samples: this.stage === 0 && this.tpRank === 0 ? batch.size : 0, weight };
    // The data-parallel exchange, without the monitors: its health rows are numbered by its group, the run's by the world.
    const outcome = this.sharded ? await this.sharded.exchange(work, local) : await exchange({ ...ctx, monitors: undefined }, gradientsOf(this.dataParallel!), work, local);
    // A GPU arena's averaged gradients go back to the device before their norm is taken there.
    hostArena(model.arena()).flush();
    return {
      ...outcome,
      samples: local.samples,
      waitMs: outcome.waitMs + ran.waitMs,
      commMs: outcome.commMs + tiedMs,
      gradNorm: await this.gradNorm(model),
      info: { ...outcome.info, bubble: stats.waitMs / Math.max(1e-9, stats.totalMs), stage_peak_live: stats.peakLive,
        // What --zero 1 divides: Adam's state is 2 × a float32 stage's parameter bytes whole, about 2 ÷ R of them per rank sharded.
        stage_parameter_bytes: parameterBytes(model), optimizer_state_bytes: optimizerStateBytes(ctx),
      },
    };
  }

  /**
   * The tied weight's gradient is the sum of its owner's (the embedding lookup) and its copy's (the
   * head): each of the two stages sends its part and adds the other's, so both hold the sum.
   */
  private async sumTiedGradients(model: PipelineStageModule): Promise<number> {
    // A frozen tied weight (LoRA's embedding) has no gradient to sum.
    const trains = new Set(model.namedTrainable().map(([n]) => n));
    const names = [...model.tiedOwned.map((n) => [n, this.stageHolding(n, 'reader')] as const), ...model.tiedCopies.map((n) => [n, this.stageHolding(n, 'owner')] as const)].filter(([n]) => trains.has(n));
    if (names.length === 0) return 0;
    const t0 = performance.now();
    const arena = model.arena();
    for (const [name, peer] of names) {
      const view = this.gradientOf(arena, name);
      const mine = await view.read(); // an owned copy: the view is added into below
      const sent = this.pipeline!.send(mine, peer, { tag: TIED_TAG });
      const theirs = await this.pipeline!.recv(new Float32Array(view.size), peer, { tag: TIED_TAG });
      await sent;
      kernelsFor(view).addInto(view.buffer, deviceMemory(view.device).fromHost(theirs).buffer);
    }
    return performance.now() - t0;
  }

  /** Parameter `name`'s gradient in the stage's arena (--zero 1: in the whole gradient arena, of which the module's holds the shard). */
  private gradientOf(arena: ParamArena, name: string): Storage {
    if (this.sharded) return this.sharded.gradientOf(name);
    const e = arena.entries.find((x) => x.name === name);
    if (!e) throw new Error(`pipeline: the stage has no parameter ${name}`);
    return arena.grads.view(e.offset, e.size);
  }

  /** The tied parameters: the layer that reads each and the layer that owns it. */
  private ties: { name: string; reader: number; owner: number }[] = [];

  /** The stage holding the reader (the copy) or the owner of tied parameter `name`. */
  private stageHolding(name: string, role: 'reader' | 'owner'): number {
    const tie = this.ties.find((t) => t.name === name);
    if (!tie) throw new Error(`pipeline: ${name} is not a tied parameter`);
    return this.placement!.ranges.findIndex(([a, b]) => tie[role] >= a && tie[role] < b);
  }

  /** The whole model's gradient norm: each stage's squares (a tied copy counted once, at its owner; --zero 1: each shard's, summed over the group), summed over the pipeline. */
  private async gradNorm(model: PipelineStageModule): Promise<number> {
    const arena = model.arena();
    const copies = new Set(model.tiedCopies);
    const split = this.splitNames(model);
    const sq = Float32Array.of(0, 0);
    const counted = arena.entries.filter((e) => !copies.has(e.name));
    const squares = await gradSquares(arena, counted);
    counted.forEach((e, i) => {
      sq[split.has(e.name) ? 0 : 1] += squares[i];
    });
    // A tensor-parallel shard's squares summed over its group; the replicated parameters' once.
    if (this.tensorGroup) await this.tensorGroup.allReduce(sq.subarray(0, 1));
    await this.sharded?.sumSquares(sq);
    const total = await this.pipeline!.allReduce(Float32Array.of(sq[0] + sq[1]));
    return Math.sqrt(total[0]);
  }

  /** The parameters split over the tensor-parallel group (none without one). */
  private splitNames(model: PipelineStageModule): Set<string> {
    this.splitEntries ??= new Set(this.tp > 1 ? shardLayout(model).keys() : []);
    return this.splitEntries;
  }

  /**
   * The test set through the pipeline of replica 0 (the others skip): stage 0 reads each batch and
   * sends its activations down, the last stage scores them and sends the sums to stage 0 (rank 0).
   */
  async evaluate(ctx: StrategyContext, data: Dataset, batchSize: number): Promise<EvalResult | null> {
    if (this.replica !== 0) return null;
    const model = stageOf(ctx.model);
    const pipeline = this.pipeline!;
    const device = model.arena().device;
    const scored = await evaluationLoop(model, data, batchSize, async (batch) => {
      const input = this.stage === 0 ? batchInput(data, batch, device) : await recvTensor(pipeline, this.stage - 1, EVAL_TAG, device);
      const output = await this.evalForward(model, input);
      if (this.stage === this.last) return output;
      await Promise.all(await sendTensor(pipeline, output, this.stage + 1, EVAL_TAG));
      return null;
    });
    const sums = Float64Array.of(scored.loss, scored.weight, scored.correct);
    if (this.stage === this.last) await pipeline.send(sums, 0, { tag: EVAL_RESULT_TAG });
    if (this.stage !== 0) return null;
    const [loss, weight, correct] = await pipeline.recv(new Float64Array(3), this.last, { tag: EVAL_RESULT_TAG });
    return evalResult(data, { loss, weight, correct });
  }

  private async evalForward(model: PipelineStageModule, input: Tensor): Promise<Tensor> {
    if (!this.tensorGroup) return noGrad(() => model.forward(input));
    // noGrad cannot span the awaits of the group's sums: the graph is built, then dropped.
    return (await model.run(input)).detach();
  }

  /** The placement, the measured bubble against the ideal, and the live micro-batches per stage. */
  async resultFields(): Promise<Record<string, unknown>> {
    const p = this.placement!;
    const { stages: P, microBatches: M, schedule } = this.options;
    // The first step pays for warming up (allocations, the first sends): measured from the second on, when there is one.
    const counted = this.stats.length > 1 ? this.stats.slice(1) : this.stats;
    const wait = sum(counted.map((s) => s.waitMs));
    const total = sum(counted.map((s) => s.totalMs));
    const model = stageOf(this.model!);
    const copies = new Set(model.tiedCopies);
    const split = this.splitNames(model);
    // The whole model once: a tied copy not at all, a replicated parameter of a tensor-parallel group on its rank 0 only.
    const own = model.namedParameters().reduce((n, [name, t]) => n + (copies.has(name) || (!split.has(name) && this.tpRank > 0) ? 0 : t.size), 0);
    const parameters = await this.group.allGather(Float32Array.of(own));
    return {
      pipeline: {
        stages: P, micro_batches: M, schedule, data_parallel: this.dataShard.count, tensor_parallel: this.tp, zero: this.options.zero ?? 0,
        placement: {
          from: p.from,
          layers: p.ranges.map(([a, b]) => p.layerNames.slice(a, b)),
          ranges: p.ranges,
          layer_ms: p.layerMs.map(round3),
          rank_speed: p.rankSpeed.map(round3),
          stage_speed: p.nodes.map((n) => round3(n.speed)),
          stage_memory_mib: p.nodes.map((n) => Math.round((n.memoryBytes ?? 0) / 2 ** 20)),
          stage_ms: p.stageMs.map(round3),
        },
        bubble_fraction: total > 0 ? wait / total : null,
        bubble_steps: counted.length,
        ideal_bubble_fraction: idealBubbleFraction(P, M),
        one_f_one_b_target: (P - 1) / M,
        peak_live_micro_batches: Array.from({ length: P }, (_, s) => Math.max(0, ...this.stats.map((st) => st.peakLive[s]))),
      },
      parameters: sum(Array.from(parameters).filter((_, r) => Math.floor(r / (P * this.tp)) === 0)),
    };
  }

  /** Each rank's stage is its own: rank-<r>/ checkpoints, with the stage's place to check on resume. */
  checkpointBuffers(): NamedBuffers {
    const [from, to] = this.placement?.ranges[this.stage] ?? [0, 0];
    return [['pipeline.stage', Float32Array.of(this.stage, this.options.stages, from, to, this.tpRank, this.tp)]] as NamedBuffers;
  }

  /**
   * Checkpoints of another number of replicas (another --workers, the same stages): every replica of
   * a stage holds the same parameters and optimizer state after the all-reduce, so this rank takes
   * its stage's folder of the first replica. With --zero the replicas hold shards of it: refused.
   */
  checkpointSourceRank(savedRanks: number): number | null {
    const block = this.options.stages * this.tp;
    if (this.options.zero !== undefined || savedRanks % block !== 0) return null;
    return this.rank % block;
  }

  /** The plan, so a resumed run cuts the model where its checkpoints were cut. */
  checkpointState(): Record<string, unknown> {
    return { pipeline_ranges: this.placement!.ranges };
  }

  isLeader(): boolean {
    return this.rank === 0;
  }

  /** --save: every stage of the first replica sends its layers (tensor-parallel shards too) to rank 0. */
  savedModel(model: Module, spec: ModelSpec): Promise<Module | null> {
    // Rank 0's whole model carries the run's adapters too (saved as a PEFT folder, or merged).
    // Over a quantized base no rank holds the whole base: rank 0's model is deferred but for the adapters, all --save writes of it.
    const build = (): Module => {
      const whole = this.quantizedBase ? deferredModel(spec, null) : createModel(spec, 0);
      this.prepare?.(whole);
      return whole;
    };
    return gatherWholeModel(this.group, spec, {
      model, build, sends: this.replica === 0, trainedOnly: this.quantizedBase, ...(this.tp > 1 ? { tp: { rank: this.tpRank, size: this.tp, rules: shardLayout(model) } } : {}),
    });
  }

  /** --zero 1: every replica's updated shard into the stage's parameters, their checksums compared every K steps; otherwise the data-parallel strategy's. */
  afterStep(ctx: StrategyContext, step: number): Promise<void> {
    return this.sharded ? this.sharded.afterStep(step) : this.dataParallel!.afterStep(ctx, step);
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  async close(): Promise<void> {
    await this.dataParallel?.close();
    for (const g of [this.pipeline, this.dataParallelGroup, this.tensorGroup]) await g?.close();
  }
}

function stageOf(model: Module): PipelineStageModule {
  if (!(model instanceof PipelineStageModule)) throw new Error('pipeline: the loop did not build the model through the strategy (Strategy.modelBuilder.buildModel)');
  return model;
}

/** The layer whose modules own parameter `name` (a tied weight's owner). */
function ownerLayer(layers: readonly ModelLayer[], name: string): number {
  const i = layers.findIndex((l) => l.modules.some(([prefix, m]) => m.namedParameters(`${prefix}.`).some(([n]) => n === name)));
  if (i < 0) throw new Error(`pipeline: no layer owns the tied parameter ${name}`);
  return i;
}

/** The first `n` training samples as one input: what every rank times its layers on. */
function sampleInput(data: Dataset, n: number): ReturnType<typeof batchInput> {
  const size = Math.min(n, data.size);
  const [batch] = new BatchLoader<Dataset>(data, Int32Array.from({ length: size }, (_, i) => i), size).batches() as Iterable<AnyBatch>;
  return batchInput(data, batch);
}

/** Model-state bytes per parameter: weights and gradients, plus Adam's two moments or SGD's momentum (sharded over `shards` ranks: --zero 1). */
function bytesPerParameter(optimizer: string, shards: number): number {
  return 8 + (optimizer.startsWith('adam') ? 8 : 4) / shards;
}

/** Bytes of the stage's parameters as held (measured from their storages: a quantized base's blocks at their format's bytes). */
function parameterBytes(model: Module): number {
  return model.parameters().reduce((n, p) => n + p.storage.byteLength, 0);
}

/** Bytes of optimizer state this rank holds (measured from its storages). */
function optimizerStateBytes(ctx: StrategyContext): number {
  return ctx.optimizer.stateStorages().reduce((n, b) => n + b.byteLength, 0);
}

/** A checkpoint's plan, when it is one for this many stages and layers. */
function savedRanges(state: Record<string, unknown> | null, stages: number, layers: number): [number, number][] | null {
  const r = state?.pipeline_ranges;
  if (!Array.isArray(r) || r.length !== stages) return null;
  const ranges = r as [number, number][];
  const contiguous = ranges.every(([a, b], s) => Number.isInteger(a) && Number.isInteger(b) && a < b && (s === 0 ? a === 0 : a === ranges[s - 1][1]));
  return contiguous && ranges[stages - 1][1] === layers ? ranges : null;
}

export function describePlacement(p: Placement & { from: string; layerNames: string[] }): string {
  const lines = p.ranges.map(([a, b], s) =>
    `  stage ${s}: layers ${a}..${b - 1} (${b - a}: ${p.layerNames.slice(a, b).join(', ')}), speed ${p.nodes[s].speed.toFixed(2)}, ` +
    `${p.stageMs[s].toFixed(2)} ms per micro-batch at that speed, ${(p.layerBytes.slice(a, b).reduce((x, y) => x + y, 0) / 2 ** 20).toFixed(1)} MiB of ${((p.nodes[s].memoryBytes ?? 0) / 2 ** 20).toFixed(0)}`);
  const why = p.from === 'checkpoint' ? 'the plan of the checkpoint resumed'
    : p.from === 'probed' ? 'cut so that the slowest stage is fastest, by each layer\'s weights × its stage\'s measured forward+backward ms per weight of one block, within its memory (a quantized base: no rank reads all of it)'
    : 'cut so that the slowest stage is fastest, by each layer\'s measured forward+backward ms ÷ the stage\'s speed, within its memory';
  return `smolcluster: pipeline placement (${why}):\n${lines.join('\n')}\n`;
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
