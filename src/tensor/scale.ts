import { kernelsFor } from './dispatch.js';
import type { Storage } from './storage.js';

/** storage *= factor, by its backend's affine kernel (gradient averaging over samples or ranks). */
export function scaleInPlace(storage: Storage, factor: number): void {
  kernelsFor(storage).affine(storage.buffer, factor, 0, storage.buffer);
}
