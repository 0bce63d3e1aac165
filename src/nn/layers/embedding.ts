import { embedding } from '../../tensor/ops/embedding.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { Module } from '../module.js';

/**
 * Token embedding table [vocab, dim], initialised N(0, 1) as in torch. Its input is a tensor of
 * token ids stored as floats (integral values), so it composes in a Sequential; `lookup` takes ids.
 */
export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(readonly vocab: number, readonly dim: number, rng: Rng) {
    super();
    this.weight = this.registerParameter('weight', Tensor.randn([vocab, dim], rng));
  }

  lookup(ids: Int32Array, idsShape: readonly number[] = [ids.length]): Tensor {
    return embedding(this.weight, ids, idsShape);
  }

  forward(x: Tensor): Tensor {
    return this.lookup(Int32Array.from(x.values()), x.shape);
  }
}
