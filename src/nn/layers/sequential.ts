import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';
import { fusedPair } from './fusion.js';

/** Applies its children in order; children are named "0", "1", ... as in torch. */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((l, i) => this.registerModule(String(i), l));
  }

  forward(x: Tensor): Tensor {
    return runInOrder(this.layers, x);
  }
}

/** Layer after layer; a pair with one fused kernel (fusion.ts) runs as one op. */
export function runInOrder(layers: readonly Module[], x: Tensor): Tensor {
  let y = x;
  for (let i = 0; i < layers.length; i++) {
    const fused = i + 1 < layers.length ? fusedPair(layers[i], layers[i + 1]) : null;
    if (fused) {
      y = fused(y);
      i++;
    } else {
      y = layers[i].forward(y);
    }
  }
  return y;
}
