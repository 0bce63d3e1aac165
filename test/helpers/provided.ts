/**
 * Which kernels a backend provides, and the asserted list of the (backend, kernel) pairs it does
 * not. The op suite never skips silently: a spec whose kernel a backend lacks checks that the pair
 * is listed here, and test/tensor/ops/provided.test.ts fails when a listed kernel appears or an
 * unlisted one is missing. `provides` is the one place that knows how a backend marks a missing
 * kernel (issue 29 §2 turns that into an absent entry of a kernel registry: change it here).
 */
import type { Backend } from '../../src/tensor/backend.js';
import { jsBackend } from '../../src/tensor/backends/js.js';
import { argmax } from '../../src/tensor/ops/reduce.js';
import { Tensor } from '../../src/tensor/tensor.js';

/**
 * What each listed backend does not provide: kernels of the contract, and ops (OP_PROBES) whose
 * result a backend cannot give. WGSL has no bf16: --precision bf16 is the cpu's (docs/PRECISION.md).
 * (argmax, once refused on webgpu for its synchronous read, now resolves through an async read.)
 */
export const NOT_PROVIDED: readonly (readonly [backend: string, kernelOrOp: string])[] = [
  ...(['toBf16', 'fromBf16', 'bf16View', 'gemm@bfloat16', 'conv2d@bfloat16', 'conv2dBackward@bfloat16'] as const).map((k) => ['webgpu', k] as const),
];

/** Ops whose result a backend may not provide, each with a probe that runs it on the backend's device. */
export const OP_PROBES: Readonly<Record<string, (b: Backend) => Promise<boolean>>> = {
  /** argmax hands the host its indices (read with await): [[0, 9], [7, 2]] gives [1, 0]. */
  argmax: async (b) => {
    let ix: Int32Array;
    try {
      ix = await argmax(Tensor.from([0, 9, 7, 2], [2, 2], 'float32', b.device));
    } catch (e) {
      // A backend whose int32 indices the host cannot read.
      if (/readSync\(\) is not possible|cannot read synchronously/.test(String(e))) return false;
      throw e;
    }
    return ix[0] === 1 && ix[1] === 0;
  },
};

/** Whether backend `b` provides op `op` of OP_PROBES (a spec asserts the pair's listing where it does not). */
export function providesOp(b: Backend, op: keyof typeof OP_PROBES): Promise<boolean> {
  return OP_PROBES[op](b);
}

/** BackendInfo's methods, which are not kernels. */
// quantKernels makes a quantized format's kernels (tensor/quant/kernels.ts), a contract of its own that the cpu backends keep.
const NOT_KERNELS = new Set(['setThreads', 'getThreads', 'quantKernels']);

/** The kernels of the contract, as the reference (js, which provides every one) has them; a bfloat16 entry is `op@bfloat16`. */
export function contractKernels(): string[] {
  const own = Object.keys(jsBackend).filter((k) => typeof (jsBackend as unknown as Record<string, unknown>)[k] === 'function' && !NOT_KERNELS.has(k));
  return [...own, ...Object.keys(jsBackend.bfloat16 ?? {}).map((k) => `${k}@bfloat16`)];
}

/**
 * Whether backend `b` runs `kernel`. Today a backend without one fills its slot with a stub that
 * takes no arguments and throws (webgpu's bf16 kernels); every kernel of the contract takes some.
 */
export function provides(b: Backend, kernel: string): boolean {
  const [op, entry] = kernel.split('@');
  const k = ((entry === 'bfloat16' ? b.bfloat16 ?? {} : b) as unknown as Record<string, unknown>)[op];
  return typeof k === 'function' && k.length > 0;
}

/** Whether the pair is on the asserted list of kernels and ops not provided. */
export function listedAsNotProvided(backendName: string, kernelOrOp: string): boolean {
  return NOT_PROVIDED.some(([b, k]) => b === backendName && k === kernelOrOp);
}

/** The kernels among `kernels` that `b` does not provide, each checked against the list (throws on an unlisted one). */
export function missingKernels(b: Backend, kernels: readonly string[]): string[] {
  const missing = kernels.filter((k) => !provides(b, k));
  const unlisted = missing.filter((k) => !listedAsNotProvided(b.name, k));
  if (unlisted.length > 0) throw new Error(`${b.name} does not provide ${unlisted.join(', ')}, which NOT_PROVIDED (test/helpers/provided.ts) does not list`);
  return missing;
}
