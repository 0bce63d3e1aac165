/**
 * A model's quantized matrices repacked in place into the layout the cpu backend's products read
 * fastest, where it has one (dispatch.ts repackForProducts: q4_0x8, q8_0x8, q5_0x8, q4_kx8 and q6_kx8 on
 * the native backend with AVX512-VNNI): for blocks the model's own memory holds (--quantize made them), never
 * a file's mapped pages. A matrix shared by two places (a tied embedding) is repacked once.
 */
import { repackForProducts } from '../tensor/dispatch.js';
import { isQuantType } from '../tensor/quant/formats.js';
import { CPU, deviceMemory } from '../tensor/storage.js';
import type { Module } from './module.js';

export function repackQuantizedMatrices(model: Module): void {
  const done = new Set<Uint8Array>();
  for (const p of model.parameters()) {
    if (!isQuantType(p.dtype) || p.ndim !== 2) continue;
    // A quantized weight lives on the cpu (its formats' kernels are there): hostMemory says so, or refuses.
    const bytes = deviceMemory(CPU).hostMemory!(p.storage) as Uint8Array;
    if (done.has(bytes)) continue;
    done.add(bytes);
    const held = repackForProducts(p.dtype, bytes, p.shape[0], p.shape[1]);
    if (held !== p.dtype) p.holdFrozen(deviceMemory(CPU).fromHost(bytes, held));
  }
}
