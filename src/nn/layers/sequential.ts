import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';

/** Applies its children in order; children are named "0", "1", ... as in torch. */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((l, i) => this.registerModule(String(i), l));
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = l.forward(y);
    return y;
  }
}
