import { backendFor } from './dispatch.js';
import type { Device } from './storage.js';

/**
 * Where a rank's parameters live and which kernels train them, as the rank reports it at join
 * (events.jsonl `worker_joined.device`, docs/EXPERIMENTS.md) and the dashboard's worker table
 * shows it: a mixed cluster has GPU and cpu workers side by side.
 */
export interface DeviceSummary {
  /** The engine's device id: 'cpu' or 'webgpu'. */
  type: Device;
  /** The GPU adapter's name ("nvidia ampere NVIDIA A100"), or 'cpu'. */
  name: string;
  /** The backend whose kernels run the float32 ops on that device: 'native', 'js' or 'webgpu'. */
  backend: string;
  /** A software adapter (SwiftShader): a GPU device that computes on the CPU. False on the cpu. */
  software: boolean;
}

/** The summary of `device` (a device no backend is registered for throws, naming it). */
export function summarizeDevice(device: Device): DeviceSummary {
  const kernels = backendFor({ device, dtype: 'float32' });
  return { type: device, name: kernels.adapter?.name ?? 'cpu', backend: kernels.name, software: kernels.adapter?.software ?? false };
}
