import { canRun } from './dispatch.js';
import { BF16_CASTS, BF16_ENTRIES } from './kernel_names.js';
import type { Precision } from './precision.js';
import type { Device } from './storage.js';

/**
 * Whether `device` can compute in `precision`: a lookup in the kernel registry, for the checks a
 * rank makes on --precision / --device before its first step. fp32 needs the device's float32
 * kernels; bf16 needs the bfloat16 entries of the ops it lowers (kernel_names.ts BF16_ENTRIES)
 * and the casts (a GPU backend without them answers false). A GPU
 * backend loads asynchronously: load it first, or its device answers false.
 */
export function supportsPrecision(device: Device, precision: Precision): boolean {
  if (precision === 'fp32') return canRun(device, 'float32');
  return canRun(device, 'bfloat16', BF16_ENTRIES) && canRun(device, 'float32', BF16_CASTS);
}
