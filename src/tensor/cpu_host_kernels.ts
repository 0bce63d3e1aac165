/**
 * The cpu's float32 kernels over plain typed arrays (native where loaded, else js), for host code
 * that runs one kernel on arrays of its own: a sampler's row of logits (generate/sampling.ts), a
 * rollout's log-probabilities (rl/rollouts.ts). Not in dispatch.ts, which reaches concrete backends
 * only through the registration path (test/layering.test.ts).
 */
import type { HostBackend } from './backend.js';
import { hostKernels } from './backends/cpu/storage.js';
import { backendFor } from './dispatch.js';
import { CPU } from './storage.js';

export function cpuHostKernels(): HostBackend {
  return hostKernels(backendFor({ device: CPU, dtype: 'float32' }));
}
