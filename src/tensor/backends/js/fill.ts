import type { Buf } from '../../backend.js';
import type { Rng } from '../../../util/rng.js';

/** x[i] = std · rng.normal(), drawn in order. */
export function fillNormal(x: Buf, rng: Rng, std: number): void {
  for (let i = 0; i < x.length; i++) x[i] = rng.normal() * std;
}

/** x[i] = low + (high - low) · rng.uniform(), drawn in order. */
export function fillUniform(x: Buf, rng: Rng, low: number, high: number): void {
  for (let i = 0; i < x.length; i++) x[i] = low + (high - low) * rng.uniform();
}
