import type { Storage } from '../../tensor/storage.js';
import { type BatchNormState, batchNorm, batchNormRelu, layerNorm } from '../../tensor/ops/norm.js';
import { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';

/** Batch normalisation over axis 1 (BatchNorm1d on [N, C], BatchNorm2d on [N, C, H, W]). */
export class BatchNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  /** Training-mode forwards since construction (torch's num_batches_tracked; safetensors export). */
  batchesTracked = 0;

  constructor(readonly channels: number, readonly momentum = 0.1, readonly eps = 1e-5) {
    super();
    this.weight = this.registerParameter('weight', Tensor.full([channels], 1));
    this.bias = this.registerParameter('bias', Tensor.zeros([channels]));
    this.registerBuffer('running_mean', new Float32Array(channels));
    this.registerBuffer('running_var', new Float32Array(channels).fill(1));
  }

  /** The running statistics, on the model's device (module.to moves them). */
  get runningMean(): Storage<Float32Array> {
    return this.buffer('running_mean');
  }

  get runningVar(): Storage<Float32Array> {
    return this.buffer('running_var');
  }

  forward(x: Tensor): Tensor {
    return batchNorm(x, this.weight, this.bias, this.step());
  }

  /** relu(forward(x)) in one op (batchNormRelu): what conv → bn → relu stacks call. */
  forwardRelu(x: Tensor): Tensor {
    return batchNormRelu(x, this.weight, this.bias, this.step());
  }

  private step(): BatchNormState {
    if (this.training) this.batchesTracked++;
    return { runningMean: this.runningMean, runningVar: this.runningVar, momentum: this.momentum, eps: this.eps, training: this.training };
  }
}

/** Layer normalisation over the last axis. */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(readonly features: number, readonly eps = 1e-5) {
    super();
    this.weight = this.registerParameter('weight', Tensor.full([features], 1));
    this.bias = this.registerParameter('bias', Tensor.zeros([features]));
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}
