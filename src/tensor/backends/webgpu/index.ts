import { registerBackend } from '../../dispatch.js';
import { registerDevice } from '../../storage.js';
import { webgpuBackend, type ConvKernelChoice, type GemmKernelChoice, type GpuBackend } from './backend.js';
import { openGpu, type AdapterSummary, type OpenedGpu } from './loader.js';
import type { GpuStream } from './stream.js';
import type { GpuCachingAllocator } from './caching_allocator.js';

export { WEBGPU } from './storage.js';
export { GpuCachingAllocator, sizeClass, type GpuMemoryStats } from './caching_allocator.js';
export type { ConvKernelChoice, GemmKernelChoice, GpuBackend } from './backend.js';
export { listAdapters, type AdapterSummary } from './loader.js';

export type WebGpuBackend = GpuBackend & { stream: GpuStream; allocator: GpuCachingAllocator; adapterName: string; gemmKernel: GemmKernelChoice; convKernel: ConvKernelChoice };

export interface WebGpuLoad {
  backend: WebGpuBackend | null;
  adapter: AdapterSummary | null;
  /** Why there is no backend (one line), when there is none. */
  reason: string | null;
}

let opened: OpenedGpu | null = null;
let loading: Promise<WebGpuLoad> | null = null;

/**
 * Opens the GPU once and registers the 'webgpu' device and backend (dispatch.ts, storage.ts).
 * Asynchronous: finding an adapter is. Without the `webgpu` package or an adapter the result
 * carries the reason and nothing is registered.
 */
export function loadWebGpuBackend(): Promise<WebGpuLoad> {
  loading ??= (async (): Promise<WebGpuLoad> => {
    const gpu = await openGpu();
    if (typeof gpu === 'string') return { backend: null, adapter: null, reason: gpu };
    opened = gpu;
    const backend = webgpuBackend(gpu) as WebGpuBackend & { memory: Parameters<typeof registerDevice>[0] };
    registerDevice(backend.memory);
    registerBackend(backend);
    return { backend, adapter: gpu.summary, reason: null };
  })();
  return loading;
}

/** Whether a load has been started (and not closed) in this process. */
export function webGpuOpened(): boolean {
  return loading !== null;
}

/** Destroys the device and drops Dawn's instance, so that the process can exit. */
export function closeWebGpu(): void {
  opened?.close();
  opened = null;
  // A later load opens a new device (and registers it in place of this one).
  loading = null;
}
