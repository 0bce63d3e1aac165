/**
 * ZeRO stage 1's update over the flat arena: the gradient arena is reduce-scattered so each rank
 * holds the summed gradient of its shard only, the optimizer (the same kernel as one process) steps
 * that shard with state for that shard only, and the updated shards are all-gathered back into
 * every rank's full parameters. Reduce-scatter plus all-gather move the bytes of one ring
 * all-reduce, so the wire costs what plain data parallelism costs, while Adam's 8 bytes of state per
 * parameter are divided by the world size.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { ParamArena } from '../../nn/arena.js';
import { type OptimizerConfig, makeOptimizer } from '../../nn/optim/index.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import { install, valuesToReceive, valuesToSend } from '../../tensor/boundary/host_values.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { sumOfSquares } from '../../tensor/scalar.js';
import type { Storage } from '../../tensor/storage.js';
import { type ShardPlan, planShards } from './shard_plan.js';

export class ShardedUpdate {
  readonly plan: ShardPlan;
  /** This rank's [start, end) of the arena. */
  readonly range: readonly [number, number];
  /** The optimizer over this rank's shard: its state covers the shard only. */
  readonly optimizer: Optimizer;
  /** The reduce-scatter's output (it may not overlap its input, the gradient arena). */
  private readonly shardGrad: Float32Array;

  constructor(private readonly group: ProcessGroup, private readonly arena: ParamArena, optimizer: OptimizerConfig) {
    this.plan = planShards(arena.size, group.size);
    this.range = this.plan.ranges[group.rank];
    this.optimizer = makeOptimizer(arena.slice(...this.range), optimizer);
    this.shardGrad = new Float32Array(this.plan.counts[group.rank]);
  }

  /** Floats of optimizer state this rank holds (for the model-state byte count). */
  stateFloats(): number {
    return this.optimizer.stateBuffers().reduce((n, b) => n + b.length, 0);
  }

  /**
   * Sums every rank's gradient arena into this rank's shard, divided by `divisor` (the total
   * weight when each rank sent its gradient × its samples). Outside the shard the gradient arena is
   * left as backward wrote it: only the shard is used from here on.
   */
  async reduceScatterGradients(divisor = 1): Promise<void> {
    await this.group.reduceScatter(await valuesToSend(this.arena.grads), this.shardGrad, { op: 'sum', counts: this.plan.counts });
    const shard = this.shardGrads();
    shard.write(this.shardGrad);
    if (divisor !== 1) kernelsFor(shard).affine(shard.buffer, 1 / divisor, 0, shard.buffer);
  }

  /** The global L2 norm of the reduced gradient: each shard's sum of squares, summed over ranks. */
  async gradNorm(): Promise<number> {
    const shard = this.shardGrads();
    const sum = Float32Array.of(shard.size > 0 ? await sumOfSquares(shard).read() : 0);
    await this.group.allReduce(sum, { op: 'sum' });
    return Math.sqrt(sum[0]);
  }

  /** torch's clip_grad_norm_ on the sharded gradient: every rank scales its shard by the same factor. */
  async clipGradNorm(maxNorm: number): Promise<number> {
    const norm = await this.gradNorm();
    const coef = maxNorm / (norm + 1e-6);
    const shard = this.shardGrads();
    if (coef < 1 && shard.size > 0) kernelsFor(shard).affine(shard.buffer, coef, 0, shard.buffer);
    return norm;
  }

  /** This rank's range of the gradient storage. */
  private shardGrads(): Storage {
    const [start, end] = this.range;
    return this.arena.grads.view(start, end - start);
  }

  /** Steps this rank's shard, then all-gathers every rank's updated shard into the full parameters. */
  async step(lr: number): Promise<void> {
    this.optimizer.lr = lr;
    if (this.plan.counts[this.group.rank] > 0) this.optimizer.step();
    const [start, end] = this.range;
    // On the cpu the shard is a range of the parameters' own memory: the all-gather runs in place.
    const all = valuesToReceive(this.arena.params);
    await this.group.allGather(await valuesToSend(this.arena.params.view(start, end - start)), all, { counts: this.plan.counts });
    install(this.arena.params, all);
  }
}
