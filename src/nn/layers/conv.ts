import { type Pool2dOptions, avgPool2d, conv2d, maxPool2d } from '../../tensor/ops/conv.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { type InitName, fans, initializers } from '../init.js';
import { Module } from '../module.js';

export interface Conv2dLayerOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
  init?: InitName;
}

/** 2-D convolution over NCHW input, weight [outC, inC, k, k]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inChannels: number, outChannels: number, kernel: number, rng: Rng, private readonly opts: Conv2dLayerOptions = {}) {
    super();
    const shape = [outChannels, inChannels, kernel, kernel];
    this.weight = this.registerParameter('weight', initializers[opts.init ?? 'torch'](shape, rng));
    const bound = 1 / Math.sqrt(fans(shape).fanIn);
    this.bias = opts.bias === false ? null : this.registerParameter('bias', Tensor.uniform([outChannels], rng, -bound, bound));
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.opts.stride ?? 1, padding: this.opts.padding ?? 0 });
  }
}

export class MaxPool2d extends Module {
  constructor(readonly opts: Pool2dOptions) {
    super();
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.opts);
  }
}

export class AvgPool2d extends Module {
  constructor(private readonly opts: Pool2dOptions) {
    super();
  }

  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.opts);
  }
}
