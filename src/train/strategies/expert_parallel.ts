/**
 * Expert parallelism (--expert-parallel E) as a strategy that owns the step. The world's ranks form
 * expert groups of E consecutive ranks; within a group, rank p runs the experts
 * [p·X/E, (p+1)·X/E) of every mixture-of-experts block (X experts), each rank routing its own
 * tokens to their experts' owners and back with all-to-alls (nn/layers/expert_parallel_moe.ts).
 * Every rank trains on its own share of the data, as data parallelism does across all W ranks.
 *
 * Each rank back-propagates its loss weighted by what it is a mean over (samples or scored tokens),
 * so an expert's owner holds the weighted sum of its group's gradients. Then the dense parameters
 * (attention, norms, embeddings, routers) are summed over the whole world and the experts a rank
 * owns only over the ranks that own the same experts (rank p of every group), and both divided by
 * the world's total weight: the gradient of the mean loss over the global batch, as one process.
 * The gradient norm counts each expert once (summed over the expert group).
 *
 * Between syncs a rank's copies of the experts it does not own are stale (never run, never sent);
 * `wholeModel` (before each evaluation and after the last step) broadcasts each owner's experts
 * from the first group, so the leader evaluates and saves the whole model once. Checkpoints are
 * per rank (rank-<r>/), each with its own experts and optimizer state.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { NamedBuffers } from '../../nn/checkpoint.js';
import type { ArenaEntry } from '../../nn/arena.js';
import { SparseMoeBlock } from '../../nn/layers/sparse_moe.js';
import type { ModelSpec } from '../../nn/models/index.js';
import { createModel } from '../../nn/models/index.js';
import type { Module } from '../../nn/module.js';
import { groupExchanger } from '../../parallel/sharding/group_exchanger.js';
import { backwardAsync } from '../../tensor/autograd.js';
import type { GroupExchanger } from '../../tensor/group_exchange.js';
import type { Tensor } from '../../tensor/tensor.js';
import { hostArena } from '../boundary/host_arena.js';
import { MicroBatchLoss, hostScalar, microBatchPlan } from '../loop/micro_batches.js';
import { batchInput, trainingLoss } from '../loop/objective.js';
import type { StepOutcome, StepWork } from '../loop/step.js';
import type { Checkpointing, Leadership, ModelBuilder, ModelSharding, Strategy, StrategyContext } from './strategy.js';

/** A model whose forward may wait (on its experts' all-to-alls): the Llama family's. */
interface AsyncForward {
  forwardAsync(ids: Tensor): Promise<Tensor>;
}

/** `model.layers.3.block_sparse_moe.experts.5.w1.weight` → 5; null for a dense parameter. */
export function expertOf(name: string): number | null {
  const m = /\.experts\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

export class ExpertParallelStrategy implements Strategy, ModelBuilder, ModelSharding, Checkpointing, Leadership {
  readonly modelBuilder: ModelBuilder = this;
  readonly sharding: ModelSharding = this;
  readonly checkpointing: Checkpointing = this;
  readonly leadership: Leadership = this;
  readonly hostOnly = 'expert parallelism exchanges token rows through host memory';
  readonly rank: number;
  readonly worldSize: number;
  /** This rank's place in its expert group: it owns that share of every block's experts. */
  readonly expertRank: number;
  private experts = 0;
  private expertGroup: ProcessGroup | null = null;
  private sameExperts: ProcessGroup | null = null;
  private readonly exchanger: GroupExchanger;
  private blocks: SparseMoeBlock[] = [];

  constructor(private readonly group: ProcessGroup, readonly degree: number) {
    if (!Number.isInteger(degree) || degree < 2) throw new Error(`--expert-parallel ${degree}: the degree must be an integer of 2 or more`);
    if (group.size % degree !== 0) throw new Error(`--expert-parallel ${degree}: --workers ${group.size} is not a multiple of it (expert groups of ${degree} ranks, data parallel across them)`);
    this.rank = group.rank;
    this.worldSize = group.size;
    this.expertRank = group.rank % degree;
    // The blocks' exchanger, bound to the expert group by setup (the model is built first).
    this.exchanger = {
      rank: this.expertRank, size: degree,
      exchange: (values, send, recv) => {
        if (!this.expertGroup) throw new Error('expert parallelism: the expert group is not set up');
        return groupExchanger(this.expertGroup).exchange(values, send, recv);
      },
    };
  }

  get name(): string {
    return `allreduce+ep${this.degree}`;
  }

  buildModel(spec: ModelSpec, seed: number, modelName: string = spec.type): Module {
    const moe = spec.type === 'llama' ? spec.moe : null;
    if (!moe) throw new Error(`--expert-parallel ${this.degree}: ${modelName} has no experts (a mixture of experts such as mixtral-tiny)`);
    if (moe.experts % this.degree !== 0) throw new Error(`--expert-parallel ${this.degree}: ${modelName}'s ${moe.experts} experts do not split over ${this.degree} ranks (the degree must divide num_local_experts)`);
    this.experts = moe.experts;
    const model = createModel(spec, seed);
    this.blocks = model.namedModules().map(([, m]) => m).filter((m): m is SparseMoeBlock => m instanceof SparseMoeBlock);
    this.blocks.forEach((b) => (b.expertGroup = this.exchanger));
    return model;
  }

  async setup(): Promise<void> {
    this.expertGroup = await this.group.split(Math.floor(this.rank / this.degree), this.rank, { name: 'expert-parallel' });
    this.sameExperts = await this.group.split(this.expertRank, this.rank, { name: 'same-experts' });
  }

  /** Whether this rank runs expert `e`. */
  private owns(e: number): boolean {
    return Math.floor(e / (this.experts / this.degree)) === this.expertRank;
  }

  async runStep(ctx: StrategyContext, work: StepWork): Promise<StepOutcome> {
    const model = ctx.model;
    if (!work.batch) throw new Error(`expert parallelism: rank ${this.rank} has no batch at step ${work.step}; every rank of an expert group computes`);
    const device = model.arena().device;
    const mean = new MicroBatchLoss();
    // Every micro-batch runs, even one that scores nothing: the group's all-to-alls need every rank.
    for (const { micro, weight } of microBatchPlan(work.data, work.batch, work.microSize)) {
      const output = await (model as Module & AsyncForward).forwardAsync(batchInput(work.data, micro, device));
      const loss = trainingLoss(work.data, output, micro);
      await backwardAsync(loss, Float32Array.of(weight));
      mean.add(await hostScalar(loss), weight);
    }
    const exchangeStart = await work.beforeExchange();
    const started = performance.now();
    const totals = Float32Array.of(mean.weight, mean.weight > 0 ? mean.mean * mean.weight : 0);
    await this.group.allReduce(totals);
    const grads = await hostArena(model.arena()).grads();
    const entries = model.arena().entries;
    const dense = entries.filter((e) => expertOf(e.name) === null);
    const own = entries.filter((e) => { const x = expertOf(e.name); return x !== null && this.owns(x); });
    await this.sumOver(this.group, grads, dense);
    await this.sumOver(this.sameExperts!, grads, own);
    const scale = totals[0] > 0 ? 1 / totals[0] : 0;
    for (let i = 0; i < grads.length; i++) grads[i] *= scale;
    // Each expert's squares once: summed over the expert group, whose ranks own different experts.
    const squares = Float32Array.of(sumSquares(grads, own));
    await this.expertGroup!.allReduce(squares);
    hostArena(model.arena()).flush();
    const commMs = performance.now() - started;
    return {
      loss: totals[0] > 0 ? totals[1] / totals[0] : NaN, samples: work.batch.size, exchangeStart, commMs, waitMs: 0,
      gradNorm: Math.sqrt(sumSquares(grads, dense) + squares[0]),
    };
  }

  /** Sums these entries' values over `group` (one all-reduce of them packed together). */
  private async sumOver(group: ProcessGroup, values: Float32Array, entries: readonly ArenaEntry[]): Promise<void> {
    const packed = new Float32Array(entries.reduce((n, e) => n + e.size, 0));
    let at = 0;
    for (const e of entries) packed.set(values.subarray(e.offset, e.offset + e.size), (at += e.size) - e.size);
    await group.allReduce(packed);
    at = 0;
    for (const e of entries) values.set(packed.subarray(at, (at += e.size)), e.offset);
  }

  /** The first expert group's owners broadcast their experts to every rank: the leader then holds the whole model. */
  async wholeModel(ctx: StrategyContext): Promise<void> {
    const host = hostArena(ctx.model.arena());
    const params = await host.params();
    const entries = ctx.model.arena().entries;
    for (let p = 0; p < this.degree; p++) {
      const owned = entries.filter((e) => { const x = expertOf(e.name); return x !== null && Math.floor(x / (this.experts / this.degree)) === p; });
      const packed = new Float32Array(owned.reduce((n, e) => n + e.size, 0));
      let at = 0;
      if (this.rank === p) for (const e of owned) packed.set(params.subarray(e.offset, e.offset + e.size), (at += e.size) - e.size);
      await this.group.broadcast(packed, p);
      at = 0;
      for (const e of owned) params.set(packed.subarray(at, (at += e.size)), e.offset);
    }
    host.flush();
    // The leader evaluates (and saves) with every expert here, without the group.
    this.blocks.forEach((b) => (b.expertGroup = null));
  }

  shardModel(): void {
    this.blocks.forEach((b) => (b.expertGroup = this.exchanger));
  }

  /** Each rank's experts and optimizer state are its own: rank-<r>/ checkpoints, with its place to check on resume. */
  checkpointBuffers(): NamedBuffers {
    return [['expert_parallel.place', Float32Array.of(this.expertRank, this.degree)]] as NamedBuffers;
  }

  isLeader(): boolean {
    return this.rank === 0;
  }

  async afterStep(): Promise<void> {}

  gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  async close(): Promise<void> {
    await this.expertGroup?.close();
    await this.sameExperts?.close();
  }
}

function sumSquares(values: Float32Array, entries: readonly ArenaEntry[]): number {
  let s = 0;
  for (const e of entries) for (let i = e.offset; i < e.offset + e.size; i++) s += values[i] * values[i];
  return s;
}
