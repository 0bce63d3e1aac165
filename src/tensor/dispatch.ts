import type { Backend, BackendInfo, Bf16Entries, DecodeAttention, FusedDecode, HugePages, Kernels, RowArgmax } from './backend.js';
import type { DType, Device, DeviceBuffer } from './storage.js';
import type { QuantType } from './quant/formats.js';
import { QUANT_KERNEL_NAMES, type QuantBackend, type QuantKernels } from './quant/kernels.js';
import { jsBackend, loadNativeBackend } from './backends/registration.js';
import { BF16_CASTS, BF16_ENTRIES, BF16_OPTIONAL_ENTRIES, KERNEL_NAMES } from './kernel_names.js';
import {
  getKernel, hasKernels, missingKernelMessage, registerKernel, registryVersion, unregisterKernels, type KernelName,
} from './kernel_registry.js';

/**
 * Which kernel runs an op: the one registered in the kernel registry (kernel_registry.ts) for the
 * tensor's (op, device, dtype). Backends are registered here in an open list (`registerBackend`);
 * per (device, dtype) one of them is preferred, and its kernels — the ones it has, one entry each —
 * are what the registry holds for that pair. js and, when its addon is built, native run on the cpu
 * device. The cpu float32 choice is made once, lazily: SMOLCLUSTER_BACKEND=<name> forces one;
 * otherwise native when the addon is built, else js with a one-line notice. An addon built from
 * other native sources than the ones shipped (backends/native_stamp.ts) is an error unless js was
 * chosen. float64 runs on js, the one cpu backend declaring it (native kernels are float32-only;
 * float64 serves the gradient checks).
 */

/** A backend as registered: its description and the kernels it has written so far (a GPU backend lacks some). */
export type RegisteredBackend = BackendInfo & Partial<Kernels<DeviceBuffer>> & Partial<DecodeAttention<DeviceBuffer>> & Partial<HugePages<DeviceBuffer>>
  & Partial<FusedDecode<DeviceBuffer>> & Partial<QuantBackend<DeviceBuffer>> & Partial<RowArgmax<DeviceBuffer>> & { readonly bfloat16?: Partial<Bf16Entries<DeviceBuffer>> };

const registered: RegisteredBackend[] = [jsBackend];

/** The backend whose module loads lazily (an addon): registered when first asked for. */
const NATIVE = 'native';

/** The chosen cpu backend (null until first asked). */
let current: RegisteredBackend | null = null;
/** Whether the registry holds the preferred backends' kernels (false after the list or the choice changed). */
let installed = false;
/** Per device, per dtype: the kernel table ops call, built from the registry at `tablesVersion`. */
let tables: Record<Device, Partial<Record<DType, Backend>>> = {};
/** quantKernelsFor's tables, per device and format: a decode step asks for them once per quantized product. */
let quantTables: Record<Device, Partial<Record<DType, QuantKernels<DeviceBuffer>>>> = {};
let tablesVersion = -1;

/** A backend's name, as SMOLCLUSTER_BACKEND and setBackend take it ('js', 'native', ...). */
export type BackendName = string;

/** Adds a backend to the list (a later one with the same name replaces it). */
export function registerBackend(b: RegisteredBackend): void {
  const at = registered.findIndex((r) => r.name === b.name);
  if (at >= 0) registered[at] = b;
  else registered.push(b);
  installed = false;
  // Once the cpu choice is made the registry follows the list at once (before it: at first use).
  if (current) ensureInstalled();
}

/** The registered backends, js first (the parity suite's list is built from these). */
export function registeredBackends(): readonly RegisteredBackend[] {
  ensureNative();
  return registered;
}

/**
 * The backend the cpu device's float32 ops run on. Both cpu backends (js, native) write the whole
 * kernel contract; a GPU backend chosen here by name (the conformance list does) is not one of them.
 */
export function backend(): Backend {
  if (!current) {
    current = choose(process.env.SMOLCLUSTER_BACKEND);
    installed = false;
  }
  return current as Backend;
}

export function setBackend(name: BackendName): RegisteredBackend {
  current = requireBackend(name);
  installed = false;
  ensureInstalled();
  return current;
}

/**
 * The kernels for a tensor's or storage's (device, dtype), looked up in the registry: one function
 * per op of the contract; an op with no registered kernel fails when called, in one line naming
 * the op, the device, the dtype and what is registered.
 */
export function kernelsFor(x: { readonly device: Device; readonly dtype: DType }): Backend {
  ensureInstalled();
  dropStaleTables();
  return tables[x.device]?.[x.dtype] ?? buildTable(x.device, x.dtype);
}

/** Forgets the tables built from the registry when it has changed since. */
function dropStaleTables(): void {
  if (tablesVersion === registryVersion()) return;
  tables = {};
  quantTables = {};
  tablesVersion = registryVersion();
}

/** The backend whose kernels serve (device, dtype) (its name and adapter: device_summary.ts). */
export function backendFor(x: { readonly device: Device; readonly dtype: DType }): RegisteredBackend {
  backend();
  const found = preferred(x.device, x.dtype);
  if (!found) throw noBackend(x.device, x.dtype);
  return found;
}

/**
 * The kernels of a quantized weight's format on its device (quant/kernels.ts), from the registry;
 * a device without them is refused in one line naming the format, the device and what it runs.
 */
export function quantKernelsFor(w: { readonly device: Device; readonly dtype: DType }): QuantKernels<DeviceBuffer> {
  ensureInstalled();
  dropStaleTables();
  return quantTables[w.device]?.[w.dtype] ?? buildQuantTable(w);
}

function buildQuantTable(w: { readonly device: Device; readonly dtype: DType }): QuantKernels<DeviceBuffer> {
  const kernels = {} as Record<string, unknown>;
  for (const name of QUANT_KERNEL_NAMES) {
    const entry = getKernel(name, w.device, w.dtype);
    if (!entry) throw new Error(`${missingKernelMessage(name, w.device, w.dtype)}: ${w.dtype} weights run where a backend has their kernels (the cpu)`);
    kernels[name] = entry.kernel;
  }
  (quantTables[w.device] ??= {})[w.dtype] = kernels as unknown as QuantKernels<DeviceBuffer>;
  return kernels as unknown as QuantKernels<DeviceBuffer>;
}

/**
 * A quantized [rows, cols] matrix's blocks, bytes a load owns, repacked in place into the layout
 * the cpu backend that runs `type` reads fastest where it has one (QuantBackend.repackQuant: the
 * native backend's q4_0x8, q8_0x8, q5_0x8, q4_kx8 and q6_kx8 on AVX512-VNNI); the format they hold after (`type`
 * when left as they were).
 */
export function repackForProducts(type: QuantType, w: Uint8Array, rows: number, cols: number): QuantType {
  ensureInstalled();
  return quantPreferred('cpu', type)?.repackQuant?.(type, w as unknown as DeviceBuffer, rows, cols) ?? type;
}

/**
 * x's [rows, cols] values into `type`'s blocks in `out` (bytes a load owns) by the cpu backend's
 * quantQuantize: the addon's for the K-quants, byte for byte the js reference's.
 */
export function quantizeOnCpu(type: QuantType, x: Float32Array, rows: number, cols: number, out: Uint8Array): void {
  quantKernelsFor({ device: 'cpu', dtype: type }).quantQuantize(x as unknown as DeviceBuffer, rows, cols, out as unknown as DeviceBuffer);
}

/**
 * Whether `device` can run `dtype` — every op in `ops`, or any op at all when none are named: a
 * registry lookup, for checks made before a run starts. A GPU backend loads asynchronously: load it
 * first, or its device answers false.
 */
export function canRun(device: Device, dtype: DType, ops?: readonly KernelName[]): boolean {
  ensureInstalled();
  return hasKernels(device, dtype, ops);
}

export function nativeAvailable(): boolean {
  return loadNativeBackend().backend !== null;
}

/** Registers the native backend when its addon loads. */
function ensureNative(): void {
  const native = loadNativeBackend().backend;
  if (native && !registered.includes(native)) registerBackend(native);
}

function choose(forced: string | undefined): RegisteredBackend {
  if (forced) {
    try {
      return requireBackend(forced);
    } catch (e) {
      throw new Error(`SMOLCLUSTER_BACKEND="${forced}": ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const { backend: native, reason, stale, badCpuCap } = loadNativeBackend();
  if (native) {
    ensureNative();
    return native;
  }
  // A stale build or a CPU cap it cannot honour is a mistake to fix, not a missing toolchain:
  // falling back would skew every figure (or test a path nobody asked for).
  if (stale || badCpuCap) throw new Error(reason ?? 'stale native addon');
  process.stderr.write(`smolcluster: native addon unavailable (${reason}); using the pure-TypeScript backend\n`);
  return jsBackend;
}

/** The registered backend of that name; the native addon is loaded (and registered) when it is the one asked for. */
function requireBackend(name: string): RegisteredBackend {
  const named = registered.find((b) => b.name === name);
  if (named) return named;
  if (name === NATIVE) {
    const { backend: native, reason } = loadNativeBackend();
    if (!native) throw new Error(`native backend requested but unavailable: ${reason}`);
    registerBackend(native);
    return native;
  }
  throw new Error(`backend "${name}" is not registered (registered: ${[...registered.map((b) => b.name), NATIVE].join(', ')})`);
}

/** Registers, per (device, dtype) some backend declares, the preferred backend's kernels in place of any before. */
function ensureInstalled(): void {
  backend();
  if (installed) return;
  const pairs = new Set(registered.flatMap((b) => b.dtypes.map((dtype) => `${b.device}|${dtype}`)));
  for (const pair of pairs) {
    const [device, dtype] = pair.split('|') as [Device, DType];
    unregisterKernels(device, dtype);
    const from = preferred(device, dtype)!;
    for (const name of KERNEL_NAMES) install(from, name, device, dtype);
    if (dtype === 'float32') installBf16(from, device);
  }
  installQuant();
  installed = true;
}

/** Per (device, quantized format) some backend runs: the preferred one's kernels for that format, its type bound. */
function installQuant(): void {
  const pairs = new Set(registered.flatMap((b) => (b.quantTypes ?? []).map((type) => `${b.device}|${type}`)));
  for (const pair of pairs) {
    const [device, type] = pair.split('|') as [Device, QuantType];
    unregisterKernels(device, type);
    const from = quantPreferred(device, type)!;
    const kernels = from.quantKernels!(type);
    for (const name of QUANT_KERNEL_NAMES) install(from, name, device, type, kernels as Partial<Record<KernelName, unknown>>);
  }
}

/** The backend whose kernels run a quantized format on a device: the chosen one where it has them, else the first that has. */
function quantPreferred(device: Device, type: QuantType): RegisteredBackend | undefined {
  if (current?.device === device && current.quantTypes?.includes(type)) return current;
  return registered.find((b) => b.device === device && b.quantTypes?.includes(type));
}

/** The bfloat16 entries of a device: its float32 backend's bf16 kernels (backend.ts Bf16Entries), under the ops' names. */
function installBf16(from: RegisteredBackend, device: Device): void {
  unregisterKernels(device, 'bfloat16');
  if (from.bfloat16) for (const name of [...BF16_ENTRIES, ...BF16_OPTIONAL_ENTRIES]) install(from, name, device, 'bfloat16', from.bfloat16);
}

/** Registers `kernels`' (backend `from`'s own, or its bfloat16 entries) `name`, when written, as the kernel of (name, device, dtype). */
function install(from: RegisteredBackend, name: KernelName, device: Device, dtype: DType, kernels: Partial<Record<KernelName, unknown>> = from): void {
  const kernel = kernels[name];
  if (typeof kernel === 'function') {
    registerKernel({ name, device, dtype, backend: from.name, kernel: (kernel as (...a: never[]) => unknown).bind(kernels) as never });
  }
}

/** The chosen cpu backend where it declares the dtype, else the first registered one that runs (device, dtype). */
function preferred(device: Device, dtype: DType): RegisteredBackend | undefined {
  if (current && current.device === device && current.dtypes.includes(dtype)) return current;
  return registered.find((b) => b.device === device && b.dtypes.includes(dtype));
}

/**
 * Every op of the contract: its registered kernel, or one that fails saying what is registered
 * instead; the serving backend's description (name, device, adapter, threads) shows through.
 */
function buildTable(device: Device, dtype: DType): Backend {
  if (!hasKernels(device, dtype)) throw dtype === 'bfloat16' && hasKernels(device, 'float32') ? new Error(fp32Only(device)) : noBackend(device, dtype);
  const table = Object.create(preferred(device, dtype) ?? null) as Record<KernelName, unknown>;
  const casts: readonly KernelName[] = BF16_CASTS;
  for (const name of KERNEL_NAMES) {
    table[name] = getKernel(name, device, dtype)?.kernel ?? ((): never => {
      const missing = missingKernelMessage(name, device, dtype);
      throw new Error(casts.includes(name) ? `${fp32Only(device)}: ${missing}` : missing);
    });
  }
  (tables[device] ??= {})[dtype] = table as unknown as Backend;
  return table as unknown as Backend;
}

/** Why a bf16 op cannot run on a device that has float32 kernels and no bf16 ones (the compute node's refusal reason). */
function fp32Only(device: Device): string {
  return `device "${device}" computes in fp32 only (no bf16 kernels are registered for it): use --precision fp32 there`;
}

function noBackend(device: Device, dtype: DType): Error {
  return new Error(`no backend runs ${dtype} on device "${device}" (registered: ${registered.map((b) => `${b.name}@${b.device}`).join(', ')})`);
}
