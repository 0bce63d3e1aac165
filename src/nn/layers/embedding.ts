import { embedding } from '../../tensor/ops/embedding.js';
import type { Indices } from '../../tensor/ops/indices.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { Module } from '../module.js';

/**
 * Token embedding table [vocab, dim], initialised N(0, 1) as in torch. Its input is a tensor of
 * token ids — int32 on the table's device, read there as they are, or integral floats (converted
 * on the host) — so it composes in a Sequential; `lookup` takes ids.
 */
export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(readonly vocab: number, readonly dim: number, rng: Rng) {
    super();
    this.weight = this.registerParameter('weight', Tensor.randn([vocab, dim], rng));
  }

  lookup(ids: Indices, idsShape?: readonly number[]): Tensor {
    return embedding(this.weight, ids, idsShape);
  }

  forward(x: Tensor): Tensor {
    return this.lookup(tokenIds(x), x.shape);
  }
}

/** Token ids as the embedding takes them: an int32 tensor as it is, float ids (integral values) as host int32 values. */
export function tokenIds(x: Tensor): Indices {
  return x.dtype === 'int32' ? x : Int32Array.from(x.values());
}
