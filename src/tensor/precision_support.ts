import { canRun } from './dispatch.js';
import { BF16_KERNEL_NAMES } from './kernel_names.js';
import type { Precision } from './precision.js';
import type { Device } from './storage.js';

/**
 * Whether `device` can compute in `precision`: a lookup in the kernel registry, for the checks a
 * rank makes on --precision / --device before its first step. fp32 needs the device's float32
 * kernels; bf16 needs the bf16 ones as well (a GPU backend without them answers false). A GPU
 * backend loads asynchronously: load it first, or its device answers false.
 */
export function supportsPrecision(device: Device, precision: Precision): boolean {
  return canRun(device, 'float32', precision === 'bf16' ? BF16_KERNEL_NAMES : undefined);
}
