import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';

/**
 * In-place re-initialisers for a freshly built layer's parameters (before the arena is packed),
 * for models whose published recipe differs from torch's layer defaults (GPT-2, BERT, ResNet).
 */
export function fillNormal(t: Tensor, rng: Rng, std: number): void {
  for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * std;
}

export function fillConst(t: Tensor | null, value: number): void {
  t?.data.fill(value);
}
