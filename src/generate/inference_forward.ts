/**
 * One forward of a generation step: grad off, in the generation's precision, and in bf16 with the
 * model's weights cast once (tensor/ops/cast_cache.ts) instead of once per op call — which made a
 * bf16 decode step read each weight three times and run at half float32's speed. Once means for the
 * model's life where it holds its casts (model_casts.ts: a model loaded for inference), else once per
 * generation (a model that may train between generations).
 */
import type { AttentionCache } from '../nn/layers/attention.js';
import type { Module } from '../nn/module.js';
import { noGrad } from '../tensor/autograd.js';
import { CastCache, setCastCache } from '../tensor/ops/cast_cache.js';
import { type Precision, withComputePrecision } from '../tensor/precision.js';
import { withLayerRecycling } from '../tensor/layer_recycling.js';
import { BufferRecycler } from '../tensor/recycler.js';
import { heldBf16Casts } from './model_casts.js';
import { deviceMemory } from '../tensor/storage.js';
import type { Tensor } from '../tensor/tensor.js';

export interface StepModel extends Module {
  forward(ids: Tensor, cache?: AttentionCache): Tensor;
}

/**
 * The weight casts one generation (or one server's batch) uses: the model's held casts where it
 * holds them (model_casts.ts), else a cache of this generation's own; null outside bf16.
 */
export function weightCasts(model: Module, precision: Precision | undefined): CastCache | null {
  if (precision !== 'bf16') return null;
  return heldBf16Casts(model) ?? new CastCache(model.parameters());
}

/**
 * A recycler for a decoder's steps when its buffers may be recycled: in fp32, or in bf16 where the
 * model holds its casts (model_casts.ts makes them outside the recycler; a generation's own cache
 * makes them inside a step, and they must outlive it), on a device whose memory is the host's (a
 * GPU's caching allocator reuses its buffers already). Every step allocates the same activations
 * (at batch 8 on the SmolLM2 shape a few hundred small arrays); fresh zeroed typed arrays cost the
 * allocator and the garbage collector about 3.5 % of an fp32 decode step's time, and in a bf16 one
 * 8 % of a batch-1 decode step and 15 % of a 32-token prefill (SmolLM2-135M, one thread, profiled).
 */
export function stepRecycler(model: Module, precision: Precision | undefined): BufferRecycler | null {
  const device = model.firstParameter()?.device;
  if (device === undefined || deviceMemory(device).hostMemory === undefined) return null;
  const recyclable = (precision ?? 'fp32') === 'fp32' || heldBf16Casts(model) !== undefined;
  return recyclable ? new BufferRecycler() : null;
}

/**
 * model.forward(ids, cache) for generation, with `casts` in place while it runs. Given a recycler
 * (buffers may be recycled: stepRecycler), a decode step's buffers (one position per row) are the
 * previous step's: the caller reads the output before the next step. A prefill (several positions)
 * recycles across its own layers instead (tensor/layer_recycling.ts): its buffers are of sizes no
 * step takes again, and a step's recycler would keep a whole forward's buffers, fresh pages each
 * prompt (SmolLM2-135M, one thread, a prompt of 8 × 32: 589 against 429 ms in fp32, 317 against 199
 * in bf16), where a layer's are the layer before's (437–441 → 391–393 ms in fp32, 187–193 → 145–148 in bf16).
 */
export function inferenceForward(
  model: StepModel, ids: Tensor, cache: AttentionCache, precision: Precision, casts: CastCache | null, recycler: BufferRecycler | null = null,
): Tensor {
  const before = setCastCache(casts);
  try {
    const forward = (): Tensor => withComputePrecision(precision, () => noGrad(() => model.forward(ids, cache)));
    if (!recycler) return forward();
    return ids.shape[1] === 1 ? recycler.run(forward) : withLayerRecycling(forward);
  } finally {
    setCastCache(before);
  }
}
