export { Optimizer, type DecayOptions } from './optimizer.js';
export { SGD, type SgdOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export * from './schedule.js';
export { clipGradNorm } from './clip.js';

import type { ParamArena } from '../arena.js';
import { Adam, AdamW } from './adam.js';
import type { Optimizer } from './optimizer.js';
import { SGD } from './sgd.js';

export type OptimizerName = 'sgd' | 'adam' | 'adamw';

export interface OptimizerConfig {
  name: OptimizerName;
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /** Decay biases and norm parameters too (torch's plain behaviour); default: they are skipped. */
  decayAll?: boolean;
}

export function makeOptimizer(arena: ParamArena, c: OptimizerConfig): Optimizer {
  switch (c.name) {
    case 'sgd': return new SGD(arena, { lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay, decayAll: c.decayAll });
    case 'adam': return new Adam(arena, { lr: c.lr, weightDecay: c.weightDecay, decayAll: c.decayAll });
    case 'adamw': return new AdamW(arena, { lr: c.lr, weightDecay: c.weightDecay, decayAll: c.decayAll });
  }
}
