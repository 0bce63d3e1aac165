/**
 * Megatron-LM's split linear layers. Each rank holds only its shard (so memory falls with T); the
 * parameters keep the full model's names (`weight`, `bias` under the same module path) and say how
 * they split (ShardRule), so a checkpoint or a test can assemble the full model. Values arrive from
 * the full model through load.ts.
 */
import { linear } from '../../tensor/ops/matmul.js';
import { Tensor } from '../../tensor/tensor.js';
import { Module } from '../../nn/module.js';
import type { ShardRule } from './shard_rule.js';

/** A module whose parameters are split: the rule of each split parameter, by its name in the module. */
export interface ShardedModule {
  shardRules(): [name: string, rule: ShardRule][];
}

export function isSharded(m: Module): m is Module & ShardedModule {
  return typeof (m as Partial<ShardedModule>).shardRules === 'function';
}

/**
 * y_r = x W_rᵀ + b_r: the rows (output features) of W and b that rank r owns. `groups` > 1 for a
 * fused projection (GPT-2's c_attn holds q, k and v: each rank takes its heads of each).
 */
export class ColumnParallelLinear extends Module implements ShardedModule {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly size: number, readonly groups = 1) {
    super();
    const local = outFeatures / size;
    this.weight = this.registerParameter('weight', Tensor.zeros([local, inFeatures]));
    this.bias = this.registerParameter('bias', Tensor.zeros([local]));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  shardRules(): [string, ShardRule][] {
    return [['weight', { dim: 0, groups: this.groups }], ['bias', { dim: 0, groups: this.groups }]];
  }
}

/**
 * The columns (input features) of W that rank r owns: `partial` gives this rank's term of
 * x Wᵀ, which the group sums (the tape's g) before the bias, replicated, is added once.
 */
export class RowParallelLinear extends Module implements ShardedModule {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly size: number) {
    super();
    this.weight = this.registerParameter('weight', Tensor.zeros([outFeatures, inFeatures / size]));
    this.bias = this.registerParameter('bias', Tensor.zeros([outFeatures]));
  }

  forward(x: Tensor): Tensor {
    throw new Error(`RowParallelLinear: its output is a partial sum; call partial() and sum it over the group (got ${x.toString()})`);
  }

  partial(x: Tensor): Tensor {
    return linear(x, this.weight, null);
  }

  shardRules(): [string, ShardRule][] {
    return [['weight', { dim: 1, groups: 1 }]];
  }
}
