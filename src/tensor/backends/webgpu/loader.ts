/// <reference types="@webgpu/types" />
/**
 * Finding a WebGPU adapter: in a browser `navigator.gpu`; in Node Dawn's binding, the npm package
 * `webgpu` (an optional dependency: a machine without it runs on the cpu). Dawn reaches the GPU
 * through Vulkan on Linux, Metal on macOS, D3D12 on Windows; on a machine without a GPU, Vulkan's
 * loader finds SwiftShader (a CPU implementation) when VK_ICD_FILENAMES names its ICD file
 * (Debian's chromium ships /usr/lib/chromium/vk_swiftshader_icd.json).
 */

/** What `smolcluster info` and `--device auto` need to know of an adapter. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software rasteriser (SwiftShader, a fallback adapter): never chosen by `auto`. */
  software: boolean;
  features: string[];
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxComputeWorkgroupStorageSize: number; maxComputeInvocationsPerWorkgroup: number };
}

export interface OpenedGpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  summary: AdapterSummary;
  /** Drops Dawn's instance so the process can exit (a live `create()` result keeps it running). */
  close(): void;
}

interface DawnModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawn: Promise<DawnModule | string> | null = null;

/** Dawn's Node binding, or why it is unavailable (a string). */
function loadDawn(): Promise<DawnModule | string> {
  dawn ??= (async () => {
    // The loader warns when XDG_RUNTIME_DIR is unset; a private directory silences it.
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    try {
      const name = 'webgpu';
      const mod = (await import(name)) as DawnModule;
      // Dawn's GPUBufferUsage and friends are globals in a browser; the binding exports them.
      for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
      return mod;
    } catch (e) {
      return `the optional package "webgpu" (Dawn) does not load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    }
  })();
  return dawn;
}

function summarize(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const lim = adapter.limits;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const fallback = (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    software: fallback || /swiftshader|llvmpipe|lavapipe|software|microsoft basic/.test(text),
    features: [...adapter.features].map(String).sort(),
    limits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
    },
  };
}

/**
 * Set to 0 (or off) to create the device without the adapter's optional features (subgroups),
 * so that every kernel takes its path for devices without them (docs/GPU.md).
 */
export const OPTIONAL_FEATURES_ENV = 'SMOLCLUSTER_WEBGPU_SUBGROUPS';

/** The optional features this project uses, when the adapter offers them and they are not turned off. */
function optionalFeatures(adapter: GPUAdapter, asked: { subgroups?: boolean }): GPUFeatureName[] {
  const env = typeof process === 'undefined' ? undefined : process.env[OPTIONAL_FEATURES_ENV];
  const subgroups = asked.subgroups ?? !(env === '0' || env?.toLowerCase() === 'off');
  return subgroups && adapter.features.has('subgroups') ? ['subgroups' as GPUFeatureName] : [];
}

/**
 * A GPU with its device, or the reason there is none (one line). `subgroups: false` creates the
 * device without the feature even where the adapter has it (also OPTIONAL_FEATURES_ENV=0).
 */
export async function openGpu(options: { subgroups?: boolean } = {}): Promise<OpenedGpu | string> {
  const browserGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  let gpu: GPU | null = browserGpu ?? null;
  if (!gpu) {
    const mod = await loadDawn();
    if (typeof mod === 'string') return mod;
    gpu = mod.create([]);
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    gpu = null;
    return 'no WebGPU adapter found (no GPU driver Dawn accepts; on a machine without a GPU set VK_ICD_FILENAMES to SwiftShader\'s ICD file)';
  }
  const summary = summarize(adapter);
  // The largest buffers and bindings the adapter allows: the parameter arena of a large model is one buffer.
  const device = await adapter.requestDevice({
    requiredFeatures: optionalFeatures(adapter, options),
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(adapter.limits.maxStorageBuffersPerShaderStage, 10),
    },
  });
  // Settle the new device before anyone can close it: destroying SwiftShader's just-opened, idle
  // device aborted or hung Dawn's teardown at exit (`pthread_mutex_lock: Assertion ... failed`) in
  // 5 of 6 runs of device_summary.test alone; 0 of 6 once the device had drained its (empty) queue.
  await device.queue.onSubmittedWorkDone();
  return {
    adapter,
    device,
    summary,
    close: () => {
      device.destroy();
      gpu = null;
    },
  };
}

/** Every adapter Dawn offers (high-performance and low-power, de-duplicated), for `smolcluster info`. */
export async function listAdapters(): Promise<AdapterSummary[] | string> {
  const mod = await loadDawn();
  if (typeof mod === 'string') return mod;
  let gpu: GPU | null = mod.create([]);
  const found: AdapterSummary[] = [];
  for (const powerPreference of ['high-performance', 'low-power'] as const) {
    const a = await gpu.requestAdapter({ powerPreference });
    if (!a) continue;
    const s = summarize(a);
    if (!found.some((f) => f.description === s.description && f.device === s.device && f.vendor === s.vendor)) found.push(s);
  }
  gpu = null;
  return found;
}
