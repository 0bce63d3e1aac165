import { maxPool2dRelu } from '../../tensor/ops/conv.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../module.js';
import { ReLU } from './activation.js';
import { MaxPool2d } from './conv.js';

/**
 * Adjacent layers of a Sequential that one kernel runs together, as the forward of the pair; null
 * when the pair has no fused kernel. The layers stay as they are (names, checkpoints, export): only
 * how the pair is computed changes, to the same values and gradients.
 *
 * ReLU → MaxPool2d (a CNN's activation and pooling): pooling relu'd cells in one pass makes no
 * ReLU output or gradient the size of the conv output, and ReLU touches each cell once, inside
 * the pooling loop.
 */
export function fusedPair(first: Module, second: Module): ((x: Tensor) => Tensor) | null {
  if (first instanceof ReLU && second instanceof MaxPool2d) return (x) => maxPool2dRelu(x, second.opts);
  return null;
}
