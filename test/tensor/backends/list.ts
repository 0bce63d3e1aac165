/**
 * The backends the conformance suite runs on (the way MLX runs one suite per backend): every test
 * under test/tensor/ops, the model forward/backward tests and the parity test (each backend's
 * outputs and gradients against the reference's) run once per backend here. Adding a backend's name
 * to BACKEND_NAMES (once it registers itself with src/tensor/dispatch.ts) runs all of them on it.
 *
 * js is the reference and always first. A backend that cannot load here (native without its addon)
 * is left out with its reason — except on CI (CI=true), where a backend in REQUIRED_ON_CI that is
 * missing is a failing test (list.test.ts).
 *
 * A backend on another device than the cpu (webgpu) loads asynchronously and holds a GPU device
 * that keeps the process alive: only files that `await loadDeviceBackends()` (and close it after)
 * see it. Its storages refuse synchronous reads: tests that read synchronously (per_backend.ts) run
 * on the cpu backends only, while the op suite (every_backend.ts), the parity test and the kernel
 * test read with await and run on a device backend too.
 */
import { backend, setBackend, type RegisteredBackend } from '../../../src/tensor/dispatch.js';
import { closeWebGpu } from '../../../src/tensor/backends/webgpu/index.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

export const REFERENCE = 'js';

/** The backends under test, reference first. */
export const BACKEND_NAMES: readonly string[] = [REFERENCE, 'native', 'webgpu'];

/**
 * SMOLCLUSTER_TEST_BACKENDS=native narrows the backends under test (unset: all of them; the
 * reference is always kept). Two runs set it: the linux-arm64 check (scripts/arm64-check.sh: under
 * qemu Dawn's arm64 build loads but finds no adapter) and the reruns at a lower CPU level
 * (scripts/cpu-levels.sh, SMOLCLUSTER_CPU set: the cap changes the native addon's paths, not the
 * GPU's). Both name `native` only: the reference then runs no specs of its own
 * (SPECS_SKIP_REFERENCE). A backend left out is never loaded, is missing with that reason, and is
 * not required under CI=true. On x86-64 under CI=true without a CPU cap the narrowing is refused
 * (ignored, and list.test.ts fails saying so), so it can never excuse webgpu from the x86 CI run.
 */
const narrowed = (process.env.SMOLCLUSTER_TEST_BACKENDS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const narrowedOut = narrowed.length === 0 ? [] : BACKEND_NAMES.filter((n) => n !== REFERENCE && !narrowed.includes(n));
const cpuCapped = (process.env.SMOLCLUSTER_CPU ?? '') !== '' && process.env.SMOLCLUSTER_CPU !== 'native';
/** True when SMOLCLUSTER_TEST_BACKENDS would leave a backend out of the x86-64 CI run at the native level (then it is ignored). */
export const NARROWING_REFUSED = narrowedOut.length > 0 && process.env.CI === 'true' && process.arch === 'x64' && !cpuCapped;
/** The backends SMOLCLUSTER_TEST_BACKENDS leaves out here. */
export const LEFT_OUT: readonly string[] = NARROWING_REFUSED ? [] : narrowedOut;
/**
 * Whether the specs (per_backend.ts, every_backend.ts) leave out the reference: where the narrowing
 * names backends without it (SMOLCLUSTER_TEST_BACKENDS=native: scripts/cpu-levels.sh and the arm64
 * check). The reference is plain JavaScript that never reads SMOLCLUSTER_CPU, so there its specs
 * would repeat the x86 run's arithmetic (JavaScript's is the same on every CPU); it stays loaded,
 * the reference the native addon's parity tests compare against.
 */
export const SPECS_SKIP_REFERENCE = !NARROWING_REFUSED && narrowed.length > 0 && !narrowed.includes(REFERENCE);

/** Backends a CI machine must be able to run (webgpu on SwiftShader: .ci/run sets VK_ICD_FILENAMES), less those left out. */
export const REQUIRED_ON_CI: readonly string[] = ['native', 'webgpu'].filter((n) => !LEFT_OUT.includes(n));

/** Backends that live on a device of their own, loaded by loadDeviceBackends. */
const DEVICE_BACKENDS: readonly string[] = ['webgpu'];

/** Why a device backend is missing, once its load was tried in this process. */
const deviceReasons = new Map<string, string>();

export interface BackendList {
  /** Loaded and registered, in BACKEND_NAMES order. */
  available: RegisteredBackend[];
  /** Named but unavailable here, with the loader's reason. */
  missing: { name: string; reason: string }[];
}

let cached: BackendList | null = null;

/** Which of BACKEND_NAMES can run in this process (resolved once; the current backend is left as it was). */
export function backendList(): BackendList {
  if (cached) return cached;
  const before = backend();
  const list: BackendList = { available: [], missing: [] };
  for (const name of BACKEND_NAMES) {
    if (LEFT_OUT.includes(name)) {
      list.missing.push({ name, reason: `left out by SMOLCLUSTER_TEST_BACKENDS=${process.env.SMOLCLUSTER_TEST_BACKENDS}` });
      continue;
    }
    if (DEVICE_BACKENDS.includes(name) && deviceReasons.has(name)) {
      list.missing.push({ name, reason: deviceReasons.get(name)! });
      continue;
    }
    try {
      list.available.push(setBackend(name));
    } catch (e) {
      list.missing.push({ name, reason: e instanceof Error ? e.message : String(e) });
    }
  }
  setBackend(before.name);
  cached = list;
  return list;
}

/** Loads the device backends (webgpu) into this process; call closeDeviceBackends() when done. */
export async function loadDeviceBackends(): Promise<void> {
  if (LEFT_OUT.includes('webgpu')) return;
  const load = await loadWebGpuForTests();
  if (load.reason) deviceReasons.set('webgpu', load.reason);
  else deviceReasons.delete('webgpu');
  cached = null;
}

/** Releases the GPU device so that the process can exit. */
export function closeDeviceBackends(): void {
  closeWebGpu();
}

/** The listed backends on the cpu device (the ones the synchronous per-backend op tests run on). */
export function cpuBackendList(): RegisteredBackend[] {
  return specBackendList().filter((b) => b.device === 'cpu');
}

/** The available backends a spec runs on: all of them, less the reference where SPECS_SKIP_REFERENCE. */
export function specBackendList(): RegisteredBackend[] {
  return backendList().available.filter((b) => !(SPECS_SKIP_REFERENCE && b.name === REFERENCE));
}
