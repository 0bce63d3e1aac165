import { mean } from '../../tensor/ops/reduce.js';
import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';

/** Global average pooling: [N, C, H, W] → [N, C] (torch's AdaptiveAvgPool2d(1) + flatten). */
export class GlobalAvgPool extends Module {
  forward(x: Tensor): Tensor {
    return mean(x, [2, 3]);
  }
}
