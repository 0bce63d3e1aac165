import type { Backend } from '../../tensor/backend.js';
import type { ParamArena } from '../arena.js';
import { Optimizer } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.Adam (decoupled = false: L2 in the gradient) and AdamW (decoupled = true). */
export class Adam extends Optimizer {
  private readonly m: Float32Array;
  private readonly v: Float32Array;

  constructor(arena: ParamArena, private readonly opts: AdamOptions, private readonly decoupled = false) {
    super(arena, opts.lr);
    this.m = new Float32Array(arena.size);
    this.v = new Float32Array(arena.size);
  }

  protected update(k: Backend): void {
    k.adamStep(this.arena.data, this.arena.grad, this.m, this.v, {
      lr: this.lr,
      beta1: this.opts.beta1 ?? 0.9,
      beta2: this.opts.beta2 ?? 0.999,
      eps: this.opts.eps ?? 1e-8,
      weightDecay: this.opts.weightDecay ?? (this.decoupled ? 0.01 : 0),
      decoupled: this.decoupled,
      step: this.stepCount,
    });
  }

  stateBuffers(): Float32Array[] {
    return [this.m, this.v];
  }
}

/** AdamW: Adam with decoupled weight decay (default 0.01, as in torch). */
export class AdamW extends Adam {
  constructor(arena: ParamArena, opts: AdamOptions) {
    super(arena, opts, true);
  }
}
