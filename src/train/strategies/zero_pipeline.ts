/**
 * ZeRO stage 1 inside one pipeline stage (--zero 1 --pipeline-stages P): the R replicas of a stage
 * shard that stage's optimizer state over their data-parallel group with the ZeRO strategy's own
 * pieces. The stage module becomes a ShardedModel of stage 1 over the group (parallel/zero/
 * sharded_model.ts): its arena is this rank's 1/R of the stage, so the optimizer the loop builds
 * over it keeps state for the shard only, while the stage's parameters and its whole gradient arena
 * stay whole for the schedule's forwards and backwards. After the schedule the whole gradient is
 * reduce-scattered over the group; the loop's optimizer steps the shard; afterStep all-gathers the
 * updated shards into every replica's parameters. Stage-1 ZeRO runs on the cpu here.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { Module } from '../../nn/module.js';
import { ShardedModel } from '../../parallel/zero/sharded_model.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import type { Storage } from '../../tensor/storage.js';
import type { LocalGradient } from '../loop/micro_batches.js';
import type { StepOutcome, StepWork } from '../loop/step.js';
import { verifySameParameters } from './zero.js';

export class ShardedStage {
  private constructor(readonly sharded: ShardedModel, private readonly group: ProcessGroup, private readonly checksumEvery: number) {}

  /** Shards `stage` over its data-parallel `group`: the module's arena is this rank's shard from now on. */
  static async build(stage: Module, group: ProcessGroup, checksumEvery = 100): Promise<ShardedStage> {
    return new ShardedStage(await ShardedModel.build(stage, group, 1), group, checksumEvery);
  }

  /** Before the first step: every shard gathered into the stage (a resumed shard is each rank's own), checked alike on resume. */
  async start(model: Module, startStep: number): Promise<void> {
    if (model.arena() !== this.sharded.shard) throw new Error('--zero 1: the stage\'s arena is not this rank\'s shard');
    await this.sharded.allGatherParams();
    if (startStep > 0 && this.checksumEvery > 0) await verifySameParameters(this.group, this.sharded, startStep);
  }

  /** Zeroes the whole gradient arena (the loop zeroes the module's arena, which is the shard only). */
  zeroGradients(): void {
    this.sharded.zeroFullGradients();
  }

  /** Parameter `name`'s gradient in the whole gradient arena (a tied weight's, summed between two stages). */
  gradientOf(name: string): Storage {
    const i = this.sharded.layout.findIndex((e) => e.name === name);
    if (i < 0) throw new Error(`pipeline --zero 1: the stage has no parameter ${name}`);
    return this.sharded.tensors[i].grad!;
  }

  /**
   * The exchange: the stage's gradient (each replica's sum over its batch, not yet divided)
   * reduce-scattered over the group, so this rank holds its shard of the sum, divided by the
   * weight of every replica's batch; the loss is their weighted mean.
   */
  async exchange(work: StepWork, local: LocalGradient): Promise<StepOutcome> {
    const s = this.sharded;
    const exchangeStart = await work.beforeExchange();
    const mark = this.group.bytesSent;
    await s.reduceScatter(0, s.plan.total, s.fullGradients(0, s.plan.total), false);
    const sums = Float32Array.of(local.weight > 0 ? local.loss * local.weight : 0, local.weight);
    await this.group.allReduce(sums, { op: 'sum' });
    const grads = s.shard.grads;
    if (sums[1] > 0 && grads.size > 0) kernelsFor(grads).affine(grads.buffer, 1 / sums[1], 0, grads.buffer);
    return {
      loss: sums[0] / sums[1], samples: local.samples, exchangeStart, waitMs: 0,
      commMs: performance.now() - exchangeStart, info: { bytes_sent: this.group.bytesSent - mark },
    };
  }

  /** Sums the shards' squares of the gradient over the group (in place): the stage's, as a whole arena gives them. */
  async sumSquares(squares: Float32Array): Promise<void> {
    await this.group.allReduce(squares, { op: 'sum' });
  }

  /** After the optimizer stepped the shard: every replica's updated shard into the stage, the checksums compared every K steps. */
  async afterStep(step: number): Promise<void> {
    await this.sharded.allGatherParams();
    if (this.checksumEvery > 0 && (step + 1) % this.checksumEvery === 0) await verifySameParameters(this.group, this.sharded, step + 1);
  }
}
