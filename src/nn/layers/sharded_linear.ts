/**
 * Megatron's split linear layers as ordinary modules (MLX's AllToShardedLinear and
 * ShardedToAllLinear). Each rank holds only its shard, under the names `weight` and `bias`, so the
 * module sits where a Linear sat and a checkpoint keeps the whole model's names. Values arrive from
 * the whole model (parallel/sharding/load.ts); they start at zero here.
 */
import { sumGradientsOverGroup, sumOverGroup } from '../../tensor/group_sum.js';
import { add } from '../../tensor/ops/elementwise.js';
import { linear } from '../../tensor/ops/matmul.js';
import { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';
import { type MaybeAsync, settled, then } from './maybe_async.js';
import type { ShardGroup, ShardRule, ShardedModule } from './sharded.js';

/**
 * y_r = x W_rᵀ + b_r: the output features rank r owns, from the whole (replicated) input, whose
 * gradient is summed over the group in the backward. `groups` > 1 for a fused projection (GPT-2's
 * c_attn holds q, k and v: each rank takes its heads of each). `bias` false: none (Llama's projections).
 */
export class ColumnParallelLinear extends Module implements ShardedModule {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, private readonly group: ShardGroup, readonly groups = 1, bias = true) {
    super();
    const local = outFeatures / group.size;
    this.weight = this.registerParameter('weight', Tensor.zeros([local, inFeatures]));
    this.bias = bias ? this.registerParameter('bias', Tensor.zeros([local])) : null;
  }

  forward(x: Tensor): Tensor {
    return linear(sumGradientsOverGroup(x, this.group), this.weight, this.bias);
  }

  shardRules(): [string, ShardRule][] {
    const rule = { dim: 0, groups: this.groups } as const;
    return this.bias ? [['weight', rule], ['bias', rule]] : [['weight', rule]];
  }
}

/**
 * y = Σ_r x_r W_rᵀ + b: rank r's input features (a column-parallel layer's output) times its
 * columns of W, summed over the group, then the bias (replicated; `bias` false: none) added once.
 */
export class RowParallelLinear extends Module implements ShardedModule {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, private readonly group: ShardGroup, bias = true) {
    super();
    this.weight = this.registerParameter('weight', Tensor.zeros([outFeatures, inFeatures / group.size]));
    this.bias = bias ? this.registerParameter('bias', Tensor.zeros([outFeatures])) : null;
  }

  run(x: Tensor): MaybeAsync<Tensor> {
    const bias = this.bias;
    const summed = sumOverGroup(linear(x, this.weight, null), this.group);
    return bias ? then(summed, (s) => add(s, bias)) : summed;
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'RowParallelLinear');
  }

  shardRules(): [string, ShardRule][] {
    return [['weight', { dim: 1, groups: 1 }]];
  }
}
