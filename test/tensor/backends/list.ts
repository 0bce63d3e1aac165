/**
 * The backends the conformance suite runs on (the way MLX runs one suite per backend): every test
 * under test/tensor/ops, the model forward/backward tests and the parity test (each backend's
 * outputs and gradients against the reference's) run once per backend here. Adding a backend's name
 * to BACKEND_NAMES (once it registers itself with src/tensor/dispatch.ts) runs all of them on it.
 *
 * js is the reference and always first. A backend that cannot load here (native without its addon)
 * is left out with its reason — except on CI (CI=true), where a backend in REQUIRED_ON_CI that is
 * missing is a failing test (list.test.ts).
 */
import type { Backend } from '../../../src/tensor/backend.js';
import { backend, setBackend } from '../../../src/tensor/dispatch.js';

export const REFERENCE = 'js';

/** The backends under test, reference first. */
export const BACKEND_NAMES: readonly string[] = [REFERENCE, 'native'];

/** Backends a CI machine must be able to run. */
export const REQUIRED_ON_CI: readonly string[] = ['native'];

export interface BackendList {
  /** Loaded and registered, in BACKEND_NAMES order. */
  available: Backend[];
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
