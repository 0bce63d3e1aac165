/**
 * An embedding table split by vocabulary rows over a tensor-parallel group (Megatron's
 * VocabParallelEmbedding): rank r holds rows [r·V/T, (r+1)·V/T); each rank looks up the ids in its
 * range (zero rows for the others) and the group sums the lookups, so every rank gets the whole
 * embedding. The table's name stays `weight`, so checkpoints keep the whole model's names.
 */
import { embedding } from '../../tensor/ops/embedding.js';
import { mul } from '../../tensor/ops/elementwise.js';
import { sumOverGroup } from '../../tensor/group_sum.js';
import { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';
import { type MaybeAsync, settled } from './maybe_async.js';
import type { ShardGroup, ShardRule, ShardedModule } from './sharded.js';

export class VocabParallelEmbedding extends Module implements ShardedModule {
  readonly weight: Tensor;
  private readonly first: number;
  private readonly rows: number;

  constructor(readonly vocab: number, readonly dim: number, private readonly group: ShardGroup) {
    super();
    if (vocab % group.size !== 0) throw new Error(`VocabParallelEmbedding: a vocabulary of ${vocab} does not split into ${group.size} equal parts`);
    this.rows = vocab / group.size;
    this.first = group.rank * this.rows;
    this.weight = this.registerParameter('weight', Tensor.zeros([this.rows, dim]));
  }

  /** The whole embedding of `ids` [..] → [.., dim], once the group has summed its parts. */
  lookup(ids: Int32Array, idsShape: readonly number[] = [ids.length]): MaybeAsync<Tensor> {
    const local = new Int32Array(ids.length);
    const mine = new Float32Array(ids.length);
    ids.forEach((id, i) => {
      const row = id - this.first;
      if (row >= 0 && row < this.rows) {
        local[i] = row;
        mine[i] = 1;
      }
    });
    const rows = embedding(this.weight, local, idsShape);
    // Ids outside this rank's rows looked up row 0: masked to zero (their gradient with them).
    const masked = mul(rows, Tensor.from(mine, [...idsShape, 1], rows.dtype, rows.device));
    return sumOverGroup(masked, this.group);
  }

  run(x: Tensor): MaybeAsync<Tensor> {
    return this.lookup(Int32Array.from(x.values()), x.shape);
  }

  forward(x: Tensor): Tensor {
    return settled(this.run(x), 'VocabParallelEmbedding');
  }

  shardRules(): [string, ShardRule][] {
    return [['weight', { dim: 0, groups: 1 }]];
  }
}
