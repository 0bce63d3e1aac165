import type { Tensor } from '../../tensor/tensor.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { randomInitSkipped } from '../../tensor/init_scope.js';
import type { Rng } from '../../util/rng.js';

/**
 * In-place re-initialisers for a freshly built layer's parameters (before the arena is packed),
 * for models whose published recipe differs from torch's layer defaults (GPT-2, BERT, ResNet).
 */
export function fillNormal(t: Tensor, rng: Rng, std: number): void {
  if (!randomInitSkipped()) kernelsFor(t).fillNormal(t.buffer, rng, std);
}

export function fillConst(t: Tensor | null, value: number): void {
  if (t) kernelsFor(t).fill(t.buffer, value);
}
