import type { Backend } from './backend.js';
import type { DType, Device } from './storage.js';
import { jsBackend, loadNativeBackend } from './backends/registration.js';

/**
 * Which backend runs an op: the one registered for the tensor's (device, dtype). Backends register
 * themselves in an open list (`registerBackend`); js and, when its addon is built, native are
 * registered on the cpu device. The cpu float32 choice is made once, lazily:
 * SMOLCLUSTER_BACKEND=<name> forces one; otherwise native when the addon is built, else js with a
 * one-line notice. An addon built from other native sources than the ones shipped
 * (backends/native_stamp.ts) is an error unless js was chosen. float64 runs on js, the one cpu
 * backend declaring it (native kernels are float32-only; float64 serves the gradient checks).
 */
const registered: Backend[] = [jsBackend];

/** The backend whose module loads lazily (an addon): registered when first asked for. */
const NATIVE = 'native';

/** The chosen cpu backend (null until first asked). */
let current: Backend | null = null;
/** Per device, per dtype: the backend ops run on (filled on first use; cleared when the choice changes). */
let table: Record<Device, Partial<Record<DType, Backend>>> = {};

/** A backend's name, as SMOLCLUSTER_BACKEND and setBackend take it ('js', 'native', ...). */
export type BackendName = string;

/** Adds a backend to the list (a later one with the same name replaces it). */
export function registerBackend(b: Backend): void {
  const at = registered.findIndex((r) => r.name === b.name);
  if (at >= 0) registered[at] = b;
  else registered.push(b);
  table = {};
}

/** The registered backends, js first (the parity suite's list is built from these). */
export function registeredBackends(): readonly Backend[] {
  ensureNative();
  return registered;
}

/** The backend the cpu device's float32 ops run on. */
export function backend(): Backend {
  if (!current) current = choose(process.env.SMOLCLUSTER_BACKEND);
  return current;
}

export function setBackend(name: BackendName): Backend {
  current = requireBackend(name);
  table = {};
  return current;
}

/** The backend for a tensor's or storage's (device, dtype). */
export function kernelsFor(x: { readonly device: Device; readonly dtype: DType }): Backend {
  return table[x.device]?.[x.dtype] ?? resolve(x.device, x.dtype);
}

function resolve(device: Device, dtype: DType): Backend {
  const chosen = backend();
  const found = chosen.device === device && chosen.dtypes.includes(dtype)
    ? chosen
    : registered.find((b) => b.device === device && b.dtypes.includes(dtype));
  if (!found) {
    throw new Error(`no backend runs ${dtype} on device "${device}" (registered: ${registered.map((b) => `${b.name}@${b.device}`).join(', ')})`);
  }
  (table[device] ??= {})[dtype] = found;
  return found;
}

export function nativeAvailable(): boolean {
  return loadNativeBackend().backend !== null;
}

/** Registers the native backend when its addon loads. */
function ensureNative(): void {
  const native = loadNativeBackend().backend;
  if (native && !registered.includes(native)) registerBackend(native);
}

function choose(forced: string | undefined): Backend {
  if (forced) {
    try {
      return requireBackend(forced);
    } catch (e) {
      throw new Error(`SMOLCLUSTER_BACKEND="${forced}": ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const { backend: native, reason, stale } = loadNativeBackend();
  if (native) {
    ensureNative();
    return native;
  }
  // A stale build is a mistake to fix, not a missing toolchain: falling back would skew every figure.
  if (stale) throw new Error(reason ?? 'stale native addon');
  process.stderr.write(`smolcluster: native addon unavailable (${reason}); using the pure-TypeScript backend\n`);
  return jsBackend;
}

/** The registered backend of that name; the native addon is loaded (and registered) when it is the one asked for. */
function requireBackend(name: string): Backend {
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
