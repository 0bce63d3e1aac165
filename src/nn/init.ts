import { Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/rng.js';

/**
 * Seeded weight initialisers, with torch's definitions. `fanIn`/`fanOut` of a weight
 * [out, in, ...kernel] are in·∏kernel and out·∏kernel.
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(2).reduce((n, d) => n * d, 1);
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: shape[0] * receptive };
}

/** torch's default for Linear/Conv weights: kaiming_uniform_(a=√5), i.e. U(±1/√fanIn). */
export function torchDefaultUniform(shape: readonly number[], rng: Rng): Tensor {
  const bound = 1 / Math.sqrt(fans(shape).fanIn);
  return Tensor.uniform(shape, rng, -bound, bound);
}

/** Kaiming (He) uniform for ReLU: U(±√(6/fanIn)). */
export function kaimingUniform(shape: readonly number[], rng: Rng): Tensor {
  const bound = Math.sqrt(6 / fans(shape).fanIn);
  return Tensor.uniform(shape, rng, -bound, bound);
}

/** Kaiming (He) normal for ReLU: N(0, 2/fanIn). */
export function kaimingNormal(shape: readonly number[], rng: Rng): Tensor {
  return Tensor.randn(shape, rng, 'float32', Math.sqrt(2 / fans(shape).fanIn));
}

/** Xavier (Glorot) uniform: U(±√(6/(fanIn+fanOut))). */
export function xavierUniform(shape: readonly number[], rng: Rng): Tensor {
  const { fanIn, fanOut } = fans(shape);
  const bound = Math.sqrt(6 / (fanIn + fanOut));
  return Tensor.uniform(shape, rng, -bound, bound);
}

/** Xavier (Glorot) normal: N(0, 2/(fanIn+fanOut)). */
export function xavierNormal(shape: readonly number[], rng: Rng): Tensor {
  const { fanIn, fanOut } = fans(shape);
  return Tensor.randn(shape, rng, 'float32', Math.sqrt(2 / (fanIn + fanOut)));
}

export type InitName = 'torch' | 'kaiming-uniform' | 'kaiming-normal' | 'xavier-uniform' | 'xavier-normal';

export const initializers: Record<InitName, (shape: readonly number[], rng: Rng) => Tensor> = {
  torch: torchDefaultUniform,
  'kaiming-uniform': kaimingUniform,
  'kaiming-normal': kaimingNormal,
  'xavier-uniform': xavierUniform,
  'xavier-normal': xavierNormal,
};
