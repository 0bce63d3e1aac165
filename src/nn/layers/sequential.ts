import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';
import { lastUse } from '../../tensor/handover.js';
import { Conv2d } from './conv.js';
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

/**
 * Layer after layer; a pair with one fused kernel (fusion.ts) runs as one op. An output made here
 * (not x passed through) is read by the next layer alone, and a Conv2d reads its input in its one
 * op, so it is handed over to a Conv2d (handover.ts: under bf16 the conv keeps a bf16 copy, the
 * float32 values go).
 */
export function runInOrder(layers: readonly Module[], x: Tensor): Tensor {
  let y = x;
  for (let i = 0; i < layers.length; i++) {
    if (y !== x && layers[i] instanceof Conv2d) y = lastUse(y);
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
