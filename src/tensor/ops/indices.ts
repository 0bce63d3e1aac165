import { mappedMemory } from '../boundary/host_values.js';
import { deviceMemory, type Device, type Storage } from '../storage.js';
import type { Tensor } from '../tensor.js';

/** Indices as ops take them: an int32 tensor where it lives, or host values (a batch's labels, a range of positions). */
export type Indices = Tensor | Int32Array;

/**
 * `ix` as an int32 storage on `device`, what index kernels read: an int32 tensor already there is
 * used as is; host values are adopted on the cpu (no copy) or uploaded once for the op (its
 * forward and backward share the upload). An index tensor of another dtype or device is refused.
 */
export function indexStorage(op: string, ix: Indices, device: Device): Storage {
  if (ix instanceof Int32Array) return deviceMemory(device).fromHost(ix);
  if (ix.dtype !== 'int32') throw new TypeError(`${op}: indices must be an int32 tensor, got ${ix.dtype}`);
  if (ix.device !== device) throw new Error(`${op}: indices live on device "${ix.device}", the values on "${device}"`);
  return ix.storage;
}

/**
 * The index values on the host when they are there to check (host values, or an int32 tensor in
 * memory the host addresses: the cpu's); null for indices on a GPU, which the host cannot read
 * synchronously (they go unchecked: the GPU's bounds-checked buffer access keeps a bad index from
 * reaching other memory).
 */
export function hostIndexValues(ix: Indices): Int32Array | null {
  if (ix instanceof Int32Array) return ix;
  return (mappedMemory(ix.storage) as Int32Array | undefined) ?? null;
}

/** How many indices `ix` holds. */
export function indexCount(ix: Indices): number {
  return ix instanceof Int32Array ? ix.length : ix.size;
}
