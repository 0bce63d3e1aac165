import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import type { Storage } from '../storage.js';
import { Tensor, allocStorage } from '../tensor.js';
import type { Rng } from '../../util/rng.js';

/**
 * Inverted dropout: zeroes each element with probability p and scales survivors by 1/(1-p). The
 * mask comes from the caller's seeded Rng, so both backends (and every rerun) drop the same units.
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
 * Fills `mask` with 0 (probability p) or 1/(1-p) from the caller's Rng, advancing it: the kernel
 * draws the very numbers `rng.uniform()` would, in order, so masks keep their bits on either backend.
 */
export function dropMask(rng: Rng, p: number, mask: Storage): Storage {
  const { words, spareNormal } = rng.getState();
  const state = Int32Array.from(words, (w) => w | 0);
  kernelsFor(mask).dropoutMask(state, p, 1 / (1 - p), mask.buffer);
  rng.setState({ words: Array.from(state), spareNormal });
  return mask;
}
