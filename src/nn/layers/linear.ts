import { linear } from '../../tensor/ops/matmul.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { type InitName, initializers } from '../init.js';
import { Module } from '../module.js';

export interface LinearOptions {
  bias?: boolean;
  init?: InitName;
}

/** y = x Wᵀ + b, W stored [out, in] as in torch. Bias starts U(±1/√in), as in torch. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, rng: Rng, opts: LinearOptions = {}) {
    super();
    this.weight = this.registerParameter('weight', initializers[opts.init ?? 'torch']([outFeatures, inFeatures], rng));
    const bound = 1 / Math.sqrt(inFeatures);
    this.bias = opts.bias === false ? null : this.registerParameter('bias', Tensor.uniform([outFeatures], rng, -bound, bound));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
