import { kernelsFor } from '../../tensor/dispatch.js';
import { sumOfSquares } from '../../tensor/scalar.js';
import type { Storage } from '../../tensor/storage.js';

/**
 * torch.nn.utils.clip_grad_norm_ over a flat gradient storage: scales all gradients so the global
 * L2 norm is at most maxNorm. Returns the norm before clipping (read from the device: the
 * coefficient depends on it). `norm`: the global norm when the storage holds only part of the
 * model's gradient (a tensor-parallel shard), measured by its owner.
 */
export function clipGradNorm(grad: Storage, maxNorm: number, norm?: number): number {
  norm ??= Math.sqrt(sumOfSquares(grad).readSync());
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) kernelsFor(grad).affine(grad.buffer, coef, 0, grad.buffer);
  return norm;
}
