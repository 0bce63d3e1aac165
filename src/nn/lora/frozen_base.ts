/**
 * A layer that wraps a frozen Linear layer and adds to its product (LoRA's adapters): the base's
 * tensors are registered here under their own names (`weight`, `bias`), so the model's parameter
 * names do not change when a Linear is wrapped, and they are frozen.
 */
import type { Tensor } from '../../tensor/tensor.js';
import type { Linear } from '../layers/linear.js';
import { Module } from '../module.js';

export abstract class FrozenBaseLinear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly base: Linear) {
    super();
    this.weight = this.registerParameter('weight', base.weight);
    if (base.bias) this.registerParameter('bias', base.bias);
    this.bias = base.bias;
    this.weight.requiresGrad = false;
    if (this.bias) this.bias.requiresGrad = false;
  }

  get inFeatures(): number {
    return this.base.inFeatures;
  }

  get outFeatures(): number {
    return this.base.outFeatures;
  }
}
