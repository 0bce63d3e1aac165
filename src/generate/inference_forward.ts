/**
 * One forward of a generation step: grad off, in the generation's precision, and in bf16 with the
 * model's weights cast once per generation (tensor/ops/cast_cache.ts) instead of once per op call —
 * which made a bf16 decode step read each weight three times and run at half float32's speed.
 */
import type { AttentionCache } from '../nn/layers/attention.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { CastCache, setCastCache } from '../tensor/ops/cast_cache.js';
import { type Precision, withComputePrecision } from '../tensor/precision.js';
import type { Tensor } from '../tensor/tensor.js';

export interface StepModel extends Module {
  forward(ids: Tensor, cache?: AttentionCache): Tensor;
}

/** The weight casts one generation (or one server's batch) reuses; null outside bf16. */
export function weightCasts(model: Module, precision: Precision | undefined): CastCache | null {
  return precision === 'bf16' ? new CastCache(model.parameters()) : null;
}

/** model.forward(ids, cache) for generation, with `casts` in place while it runs. */
export function inferenceForward(model: StepModel, ids: Tensor, cache: AttentionCache, precision: Precision, casts: CastCache | null): Tensor {
  const before = setCastCache(casts);
  try {
    return withComputePrecision(precision, () => noGrad(() => model.forward(ids, cache)));
  } finally {
    setCastCache(before);
  }
}
