import type { Backend, Buf } from './backend.js';
import { jsBackend } from './backends/js.js';
import { loadNativeBackend } from './backends/native.js';

/**
 * Which backend runs the ops. Chosen once, lazily: SMOLCLUSTER_BACKEND=native|js forces one;
 * otherwise native when the addon is built, else js with a one-line notice. An addon built from other
 * native sources than the ones shipped (backends/native_stamp.ts) is an error unless js was chosen.
 * float64 buffers always run on js (the native kernels are float32-only; float64 serves the
 * gradient checks).
 */
let current: Backend | null = null;

export type BackendName = 'js' | 'native';

export function backend(): Backend {
  if (!current) current = choose(process.env.SMOLCLUSTER_BACKEND);
  return current;
}

export function setBackend(name: BackendName): Backend {
  current = name === 'js' ? jsBackend : requireNative();
  return current;
}

/** The backend for a buffer: float64 always runs on js. */
export function kernelsFor(buf: Buf): Backend {
  return buf instanceof Float64Array ? jsBackend : backend();
}

export function nativeAvailable(): boolean {
  return loadNativeBackend().backend !== null;
}

function choose(forced: string | undefined): Backend {
  if (forced === 'js') return jsBackend;
  if (forced === 'native') return requireNative();
  if (forced) throw new Error(`SMOLCLUSTER_BACKEND must be "native" or "js", got "${forced}"`);
  const { backend: native, reason, stale } = loadNativeBackend();
  if (native) return native;
  // A stale build is a mistake to fix, not a missing toolchain: falling back would skew every figure.
  if (stale) throw new Error(reason ?? 'stale native addon');
  process.stderr.write(`smolcluster: native addon unavailable (${reason}); using the pure-TypeScript backend\n`);
  return jsBackend;
}

function requireNative(): Backend {
  const { backend: native, reason } = loadNativeBackend();
  if (!native) throw new Error(`native backend requested but unavailable: ${reason}`);
  return native;
}
