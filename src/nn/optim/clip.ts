import { kernelsFor } from '../../tensor/dispatch.js';

/**
 * torch.nn.utils.clip_grad_norm_ over a flat gradient arena: scales all gradients so the global
 * L2 norm is at most maxNorm. Returns the norm before clipping. `norm`: the global norm when the
 * arena holds only part of the model's gradient (a tensor-parallel shard), measured by its owner.
 */
export function clipGradNorm(grad: Float32Array, maxNorm: number, norm?: number): number {
  const k = kernelsFor(grad);
  norm ??= Math.sqrt(k.sumSquares(grad));
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) k.affine(grad, coef, 0, grad);
  return norm;
}
