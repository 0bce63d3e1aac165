/**
 * What a sharded layer is to the rest of the house: each rank holds its part of a parameter under
 * the whole model's name, and says how the part relates to the whole (ShardRule), so a checkpoint
 * or a test assembles the full model and a rank's shard is sliced from it (parallel/sharding/).
 */
import type { GroupReducer } from '../../tensor/group_sum.js';
import type { Module } from '../module.js';

/**
 * Which dimension of a parameter is split, and in how many equal groups (a fused q/k/v weight is
 * three: each rank owns the same slice of q, of k and of v). Rank r of T owns the r-th T-th of
 * every group along `dim`. A parameter without a rule is replicated (the same on every rank).
 */
export interface ShardRule {
  /** 0: rows (output features, column-parallel; vocabulary rows); 1: columns (input features, row-parallel). */
  dim: 0 | 1;
  groups: number;
}

/** A module whose parameters are split: the rule of each split parameter, by its name in the module. */
export interface ShardedModule {
  shardRules(): [name: string, rule: ShardRule][];
}

export function isSharded(m: Module): m is Module & ShardedModule {
  return typeof (m as Partial<ShardedModule>).shardRules === 'function';
}

/** A tensor-parallel group as a sharded layer sees it: its sum, and this rank's place in it. */
export interface ShardGroup extends GroupReducer {
  readonly rank: number;
}
