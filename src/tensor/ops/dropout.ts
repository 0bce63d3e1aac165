import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import type { Storage } from '../storage.js';
import { Tensor, allocStorage } from '../tensor.js';
import { dropThreshold } from '../../util/philox.js';
import type { Rng } from '../../util/rng.js';

/**
 * Inverted dropout: zeroes each element with probability p and scales survivors by 1/(1-p). The
 * mask is keyed by the caller's seeded Rng, so every backend (and every rerun) drops the same units.
 */
export function dropout(x: Tensor, p: number, rng: Rng, training = true): Tensor {
  if (p < 0 || p >= 1) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  const mask = dropMask(rng, p, allocStorage(x.dtype, x.size, x.device)).buffer;
  const out = Tensor.zeros(x.shape, x.dtype, x.device);
  const k = kernelsFor(x);
  k.binary('mul', x.buffer, [1], mask, [1], out.buffer, [x.size]);
  return record(out, 'dropout', [x], (gy) => {
    const g = allocStorage(x.dtype, x.size, x.device).buffer;
    k.binary('mul', gy, [1], mask, [1], g, [x.size]);
    k.axpy(1, g, x.ensureGrad());
  });
}

/**
 * Fills `mask` with 0 (probability p) or 1/(1-p): the backend draws each element from Philox-4x32-10
 * under a 64-bit key, the caller's Rng's next two words (the only numbers the mask takes from it),
 * so a mask has the same bits on every backend, the GPU's included, and reruns drop the same units.
 */
export function dropMask(rng: Rng, p: number, mask: Storage): Storage {
  const threshold = dropThreshold(p);
  const k0 = rng.nextUint32();
  const k1 = rng.nextUint32();
  kernelsFor(mask).dropoutMask(k0, k1, threshold, 1 / (1 - p), mask.buffer);
  return mask;
}
