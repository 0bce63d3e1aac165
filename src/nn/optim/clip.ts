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
  norm ??= Math.sqrt(await sumOfSquares(grad).read());
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) kernelsFor(grad).affine(grad.buffer, coef, 0, grad.buffer);
  return norm;
}
