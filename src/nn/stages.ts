/**
 * The layer list (layer_list.ts) in the call shape ZeRO-3's staged step uses today: each layer run
 * synchronously with its own tied weight. No grouping or naming of its own: the stages are the
 * model's layers. (Transitional: once parallel/zero/staged_step.ts awaits `ModelLayer.forward`
 * itself, this file goes.)
 */
import type { Tensor } from '../tensor/tensor.js';
import { type ModelLayer, layerListOf } from './layer_list.js';
import { settled } from './layers/maybe_async.js';
import type { Module } from './module.js';

/** A layer of the model's layer list, with its forward run at once (one rank: no group sums). */
export interface ForwardStage extends ModelLayer {
  run(x: Tensor): Tensor;
}

/** The model's layers as stages, or null when it has no layer list. */
export function forwardStagesOf(model: Module): ForwardStage[] | null {
  return layerListOf(model)?.map((layer) => ({ ...layer, run: (x: Tensor) => settled(layer.forward(x, layer.tied?.tensor), layer.name) })) ?? null;
}
