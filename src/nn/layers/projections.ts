/**
 * How a model makes its split-able projections, so a model family is written once: whole Linear
 * layers on one rank (the default), or Megatron's column- and row-parallel layers over a
 * tensor-parallel group, swapped in at the same places under the same names (parallel/sharding/).
 */
import { sumGradientsOverGroup } from '../../tensor/group_sum.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import type { Module } from '../module.js';
import { Linear } from './linear.js';
import type { ShardGroup } from './sharded.js';
import { ColumnParallelLinear, RowParallelLinear } from './sharded_linear.js';

export interface Projections {
  /** Ranks the projections are split over (1: whole); a model splits its heads by it. */
  readonly size: number;
  /** A projection whose output features may be split (`groups`: fused q/k/v). Reads the whole input. `bias` false: none (Llama). */
  columns(inF: number, outF: number, rng: Rng, groups?: number, bias?: boolean): Module;
  /** A projection whose input features may be split; its output is whole (summed over the group). */
  rows(inF: number, outF: number, rng: Rng, bias?: boolean): Module;
  /**
   * A replicated weight a rank applies to its own heads only (Qwen3's per-head q/k norms): as it
   * is, its gradient summed over the group, since each rank's is the part from its heads.
   */
  sharedWeight(w: Tensor): Tensor;
}

/** One rank: ordinary Linear layers, drawing their initial values from `rng` as always. */
export const wholeProjections: Projections = {
  size: 1,
  columns: (inF, outF, rng, _groups, bias = true) => new Linear(inF, outF, rng, { bias }),
  rows: (inF, outF, rng, bias = true) => new Linear(inF, outF, rng, { bias }),
  sharedWeight: (w) => w,
};

/** Split over `group`: each rank's shard, its values to be loaded from the whole model. */
export function shardedProjections(group: ShardGroup): Projections {
  return {
    size: group.size,
    columns: (inF, outF, _rng, groups = 1, bias = true) => new ColumnParallelLinear(inF, outF, group, groups, bias),
    rows: (inF, outF, _rng, bias = true) => new RowParallelLinear(inF, outF, group, bias),
    sharedWeight: (w) => sumGradientsOverGroup(w, group),
  };
}
