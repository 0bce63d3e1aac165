/**
 * The kernel registry: which function runs an op on a (device, dtype), after tfjs-core's
 * `kernel_registry`. A backend grows one kernel at a time: each `registerKernel` adds (or replaces)
 * one entry, and a kernel a backend has not written is simply an absent entry — never a stub that
 * throws. "Can this device run these ops in this dtype?" is then a lookup (`hasKernels`), made
 * before a run starts rather than discovered by its first failing step.
 *
 * The registry knows nothing of which backend is chosen on a device (dispatch.ts decides that and
 * registers the chosen backend's kernels here); it only stores and answers.
 */
import type { Kernels } from './backend.js';
import type { QuantKernels } from './quant/kernels.js';
import type { DType, Device, DeviceBuffer } from './storage.js';

/** Every kernel the registry may hold: the contract's ops, and a quantized format's (quant/kernels.ts). */
export type RegistryKernels = Kernels<DeviceBuffer> & QuantKernels<DeviceBuffer>;

/** An op's name in the kernel contract ('gemm', 'conv2d', ..., 'quantLinear'). */
export type KernelName = keyof RegistryKernels;

/** One registered kernel: the function that runs `name` on `device` for `dtype`, and who wrote it. */
export interface KernelConfig<K extends KernelName = KernelName> {
  readonly name: K;
  readonly device: Device;
  readonly dtype: DType;
  /** The backend that registered it ('js', 'native', 'webgpu', ...): for messages only. */
  readonly backend: string;
  readonly kernel: RegistryKernels[K];
}

const entries = new Map<string, KernelConfig>();
/** Bumped on every change, so that tables built from the registry (dispatch.ts) know when they are stale. */
let version = 0;

const keyOf = (name: string, device: Device, dtype: DType): string => `${name}|${device}|${dtype}`;

/** Adds a kernel; one already registered under the same (name, device, dtype) is replaced and returned. */
export function registerKernel<K extends KernelName>(config: KernelConfig<K>): KernelConfig | undefined {
  const key = keyOf(config.name, config.device, config.dtype);
  const previous = entries.get(key);
  entries.set(key, config as KernelConfig);
  version++;
  return previous;
}

/** Removes one kernel (absent already: nothing happens). */
export function unregisterKernel(name: KernelName, device: Device, dtype: DType): void {
  if (entries.delete(keyOf(name, device, dtype))) version++;
}

/** Removes every kernel of (device, dtype): a backend's kernels are about to be replaced by another's. */
export function unregisterKernels(device: Device, dtype: DType): void {
  for (const k of kernelsRegistered({ device, dtype })) entries.delete(keyOf(k.name, device, dtype));
  version++;
}

/** The kernel registered for (name, device, dtype), or undefined: absence is an answer, not an error. */
export function getKernel<K extends KernelName>(name: K, device: Device, dtype: DType): KernelConfig<K> | undefined {
  return entries.get(keyOf(name, device, dtype)) as KernelConfig<K> | undefined;
}

/** Whether every one of `names` is registered for (device, dtype); with no names, whether any kernel is. */
export function hasKernels(device: Device, dtype: DType, names?: readonly KernelName[]): boolean {
  if (names) return names.every((n) => entries.has(keyOf(n, device, dtype)));
  return kernelsRegistered({ device, dtype }).length > 0;
}

/** The registered kernels, optionally only those of a device and/or dtype. */
export function kernelsRegistered(filter: { device?: Device; dtype?: DType } = {}): KernelConfig[] {
  return [...entries.values()].filter((k) =>
    (filter.device === undefined || k.device === filter.device) && (filter.dtype === undefined || k.dtype === filter.dtype));
}

/** A number that changes whenever the registry does. */
export function registryVersion(): number {
  return version;
}

/**
 * One line saying that `name` has no kernel on (device, dtype), and what is registered instead:
 * how many kernels that (device, dtype) has and from which backend, and where `name` does run.
 */
export function missingKernelMessage(name: string, device: Device, dtype: DType): string {
  const here = kernelsRegistered({ device, dtype });
  const backends = [...new Set(here.map((k) => k.backend))].join(', ');
  const onThis = here.length > 0 ? `${here.length} kernels (${backends})` : 'none';
  const elsewhere = [...entries.values()].filter((k) => k.name === name).map((k) => `${k.device}/${k.dtype}`);
  return `no kernel "${name}" is registered for ${dtype} on device "${device}" (registered for ${device}/${dtype}: ${onThis}; `
    + `"${name}" runs on: ${elsewhere.join(', ') || 'no device'})`;
}
