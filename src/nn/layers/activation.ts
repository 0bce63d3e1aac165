import { gelu, relu, sigmoid, tanh } from '../../tensor/ops/elementwise.js';
import { flatten } from '../../tensor/ops/layout.js';
import { dropout } from '../../tensor/ops/dropout.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { Module } from '../module.js';

/** A parameter-free module around a tensor function. */
class Fn extends Module {
  constructor(private readonly fn: (x: Tensor) => Tensor) {
    super();
  }

  forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}

export class ReLU extends Fn {
  constructor() {
    super(relu);
  }
}

export class GELU extends Fn {
  constructor() {
    super(gelu);
  }
}

export class Tanh extends Fn {
  constructor() {
    super(tanh);
  }
}

export class Sigmoid extends Fn {
  constructor() {
    super(sigmoid);
  }
}

export class Flatten extends Fn {
  constructor(startDim = 1) {
    super((x) => flatten(x, startDim));
  }
}

/** Inverted dropout with its own seeded stream: identical masks on every rerun. Off in eval mode. */
export class Dropout extends Module {
  constructor(readonly p: number, private readonly rng: Rng) {
    super();
    this.registerRng('mask', rng);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.rng, this.training);
  }

  /** The same dropout for attention probabilities (the fused kernel applies it): none in eval mode or at p = 0. */
  forAttention(): { p: number; rng: Rng } | undefined {
    return this.training && this.p > 0 ? { p: this.p, rng: this.rng } : undefined;
  }
}
