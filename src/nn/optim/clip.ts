import { kernelsFor } from '../../tensor/dispatch.js';
import { sumOfSquares } from '../../tensor/scalar.js';
import type { Storage } from '../../tensor/storage.js';

/**
 * torch.nn.utils.clip_grad_norm_ over a flat gradient storage: scales all gradients so the global
 * L2 norm is at most maxNorm. Resolves to the norm before clipping (read from the device with
 * await, on any device: the coefficient depends on it). `norm`: the global norm when the storage holds only part of the
 * model's gradient (a tensor-parallel shard), measured by its owner.
 */
export async function clipGradNorm(grad: Storage, maxNorm: number, norm?: number): Promise<number> {
  checkArguments(grad, maxNorm, norm);
  norm ??= Math.sqrt(await sumOfSquares(grad).read());
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) kernelsFor(grad).affine(grad.buffer, coef, 0, grad.buffer);
  return norm;
}

/** What a wrong call gets instead of a kernel error from deep inside (a library user's mistake, named). */
function checkArguments(grad: unknown, maxNorm: unknown, norm: unknown): void {
  const isStorage = typeof grad === 'object' && grad !== null && 'buffer' in grad && 'device' in grad && 'size' in grad;
  if (!isStorage) {
    const got = grad === null ? 'null' : Array.isArray(grad) ? 'an array' : typeof grad === 'object' ? (grad.constructor?.name ?? 'an object') : typeof grad;
    throw new TypeError(`clipGradNorm: the first argument is the model's gradient storage (model.arena().grads), got ${got}`);
  }
  if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new RangeError(`clipGradNorm: maxNorm must be a finite number > 0, got ${String(maxNorm)}`);
  }
  if (norm !== undefined && (typeof norm !== 'number' || !(norm >= 0))) throw new RangeError(`clipGradNorm: norm must be a number >= 0 when given, got ${String(norm)}`);
}
