import type { Backend } from '../../tensor/backend.js';
import type { ParamArena } from '../arena.js';
import { Optimizer } from './optimizer.js';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay. */
export class SGD extends Optimizer {
  private readonly momentumBuf: Float32Array | null;

  constructor(arena: ParamArena, private readonly opts: SgdOptions) {
    super(arena, opts.lr);
    if (opts.nesterov && !((opts.momentum ?? 0) > 0 && (opts.dampening ?? 0) === 0)) {
      throw new Error('SGD: Nesterov momentum requires momentum > 0 and dampening = 0');
    }
    this.momentumBuf = (opts.momentum ?? 0) > 0 ? new Float32Array(arena.size) : null;
  }

  protected update(k: Backend): void {
    k.sgdStep(this.arena.data, this.arena.grad, this.momentumBuf, {
      lr: this.lr,
      momentum: this.opts.momentum ?? 0,
      dampening: this.opts.dampening ?? 0,
      weightDecay: this.opts.weightDecay ?? 0,
      nesterov: this.opts.nesterov ?? false,
      firstStep: this.stepCount === 1,
    });
  }

  stateBuffers(): Float32Array[] {
    return this.momentumBuf ? [this.momentumBuf] : [];
  }
}
