/**
 * A model's LoRA layers as a writer merges them, one weight at a time (nn/interchange/gguf_export.ts
 * MergedValues): each adapted weight's values are W + (alpha / r) · B A, W read as float32 (a
 * quantized base dequantized, a bf16 one widened), made when the writer reaches that weight. No
 * merged copy of the model is built: an 8B base in 4-bit blocks merges in the memory of its largest matrix.
 */
import type { MergedValues } from '../interchange/gguf_export.js';
import type { Module } from '../module.js';
import { loraLayers, mergedWeight } from './apply.js';
import { isAdapterParameter } from './names.js';

export function loraMergedValues(model: Module): MergedValues {
  const layers = new Map(loraLayers(model).map(([name, layer]) => [`${name}.weight`, layer]));
  return {
    isAdapter: isAdapterParameter,
    of(name) {
      const layer = layers.get(name);
      return layer ? () => mergedWeight(layer) : null;
    },
  };
}
