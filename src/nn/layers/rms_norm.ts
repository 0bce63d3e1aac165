import { rmsNorm } from '../../tensor/ops/rms_norm.js';
import { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';

/**
 * Root-mean-square normalisation over the last axis (Zhang & Sennrich 2019; Hugging Face's
 * LlamaRMSNorm): y = x / √(mean(x²) + eps) · weight, no mean subtracted and no bias. The weight
 * starts at 1. Llama's model and block norms use it over the width, Qwen3's q/k norms over a head.
 */
export class RMSNorm extends Module {
  readonly weight: Tensor;

  constructor(readonly features: number, readonly eps: number) {
    super();
    this.weight = this.registerParameter('weight', Tensor.full([features], 1));
  }

  /** `weight`: the weight as read (a tensor-parallel rank's view of it: Projections.sharedWeight). */
  forward(x: Tensor, weight: Tensor = this.weight): Tensor {
    return rmsNorm(x, weight, this.eps);
  }
}
