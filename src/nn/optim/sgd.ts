import type { Backend } from '../../tensor/backend.js';
import type { ParamArena } from '../arena.js';
import type { DeviceBuffer, Storage } from '../../tensor/storage.js';
import { type DecayOptions, Optimizer } from './optimizer.js';

export interface SgdOptions extends DecayOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay. */
export class SGD extends Optimizer {
  private readonly momentumBuf: Storage<Float32Array> | null;
  /** Per decay segment: parameter, gradient and momentum views. */
  private readonly parts: { p: DeviceBuffer; g: DeviceBuffer; buf: DeviceBuffer | null; decay: boolean }[];
  /** The whole arena in one part: one kernel call when there is no decay to skip. */
  private readonly whole: SGD['parts'];

  constructor(arena: ParamArena, private readonly opts: SgdOptions) {
    super(arena, opts.lr, opts);
    if (opts.nesterov && !((opts.momentum ?? 0) > 0 && (opts.dampening ?? 0) === 0)) {
      throw new Error('SGD: Nesterov momentum requires momentum > 0 and dampening = 0');
    }
    this.momentumBuf = (opts.momentum ?? 0) > 0 ? this.stateStorage() : null;
    const [p, g] = [arena.params, arena.grads].map((b) => this.cut(b));
    const bufs = this.momentumBuf ? this.cut(this.momentumBuf) : null;
    this.parts = this.segments.map((s, i) => ({ p: p[i], g: g[i], buf: bufs ? bufs[i] : null, decay: s.decay }));
    this.whole = [{ p: arena.params.buffer, g: arena.grads.buffer, buf: this.momentumBuf?.buffer ?? null, decay: true }];
  }

  protected update(k: Backend): void {
    const weightDecay = this.opts.weightDecay ?? 0;
    for (const s of weightDecay === 0 ? this.whole : this.parts) {
      k.sgdStep(s.p, s.g, s.buf, {
        lr: this.lr,
        momentum: this.opts.momentum ?? 0,
        dampening: this.opts.dampening ?? 0,
        weightDecay: s.decay ? weightDecay : 0,
        nesterov: this.opts.nesterov ?? false,
        firstStep: this.stepCount === 1,
      });
    }
  }

  stateStorages(): Storage<Float32Array>[] {
    return this.momentumBuf ? [this.momentumBuf] : [];
  }

  cloneOver(arena: ParamArena): SGD {
    return this.withProgress(new SGD(arena, this.opts));
  }
}
