import type { Backend } from '../../tensor/backend.js';
import type { DeviceBuffer, Storage } from '../../tensor/storage.js';
import type { ParamArena } from '../arena.js';
import { type DecayOptions, Optimizer } from './optimizer.js';

export interface AdamOptions extends DecayOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.Adam (decoupled = false: L2 in the gradient) and AdamW (decoupled = true). */
export class Adam extends Optimizer {
  private readonly m: Storage<Float32Array>;
  private readonly v: Storage<Float32Array>;
  /** Per decay segment: parameter, gradient, m and v views. */
  private readonly parts: { p: DeviceBuffer; g: DeviceBuffer; m: DeviceBuffer; v: DeviceBuffer; decay: boolean }[];
  /** The whole arena in one part: one kernel call when there is no decay to skip. */
  private readonly whole: Adam['parts'];

  constructor(arena: ParamArena, private readonly opts: AdamOptions, private readonly decoupled = false) {
    super(arena, opts.lr, opts);
    this.m = this.stateStorage();
    this.v = this.stateStorage();
    const [p, g, m, v] = [arena.params, arena.grads, this.m, this.v].map((b) => this.cut(b));
    this.parts = this.segments.map((s, i) => ({ p: p[i], g: g[i], m: m[i], v: v[i], decay: s.decay }));
    this.whole = [{ p: arena.params.buffer, g: arena.grads.buffer, m: this.m.buffer, v: this.v.buffer, decay: true }];
  }

  protected update(k: Backend): void {
    const weightDecay = this.opts.weightDecay ?? (this.decoupled ? 0.01 : 0);
    for (const s of weightDecay === 0 ? this.whole : this.parts) {
      k.adamStep(s.p, s.g, s.m, s.v, {
        lr: this.lr,
        beta1: this.opts.beta1 ?? 0.9,
        beta2: this.opts.beta2 ?? 0.999,
        eps: this.opts.eps ?? 1e-8,
        weightDecay: s.decay ? weightDecay : 0,
        decoupled: this.decoupled,
        step: this.stepCount,
      });
    }
  }

  stateStorages(): Storage<Float32Array>[] {
    return [this.m, this.v];
  }

  cloneOver(arena: ParamArena): Adam {
    return this.withProgress(this.decoupled ? new AdamW(arena, this.opts) : new Adam(arena, this.opts));
  }
}

/** AdamW: Adam with decoupled weight decay (default 0.01, as in torch). */
export class AdamW extends Adam {
  constructor(arena: ParamArena, opts: AdamOptions) {
    super(arena, opts, true);
  }
}
