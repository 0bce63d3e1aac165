/**
 * Whether the native backend packs bf16 weights in this process (ops/packed_weights.ts,
 * src/native/gemm_bf16_packed.cc): only oneDNN does, and only where its bf16 matmul has a kernel
 * faster than its reference one at this CPU level. Asked of the addon by packing a small weight,
 * so the packing tests assert what this build does, packed or the plain-product fallback (an
 * OpenBLAS-only build, arm64, an x86 CPU capped below bf16) — and held to the build and the CPU
 * table (bf16PackingExpected), so the probe cannot excuse a lost packing.
 */
import { hostKernels } from '../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend, nativeCpuTable, nativeInternals } from '../../src/tensor/backends/native.js';

/** Whether the native backend returned a packed copy of a [16, 32] bf16 weight (false without the addon). */
export function nativePacksBf16(): boolean {
  const loaded = loadNativeBackend();
  const k = loaded.backend ? hostKernels(loaded.backend).bfloat16 : undefined;
  if (!k?.packWeight) return false;
  const w = new Uint16Array(16 * 32).fill(0x3f80); // bf16 1.0
  return k.packWeight(w, 16, 32, true, 9) !== null;
}

/**
 * What the build and the CPU table say packing must be: false without oneDNN in the addon; with
 * oneDNN on x86-64, whether the (capped) level has AVX-512 (oneDNN 2.6's bf16 matmul is its
 * reference kernel below avx512_core, faster from there, emulating bf16 without AVX512-BF16: measured
 * at every SMOLCLUSTER_CPU level); null elsewhere (oneDNN on arm64: its own dispatch decides).
 */
export function bf16PackingExpected(): boolean | null {
  const internals = nativeInternals();
  if (!internals) return false;
  if (!internals.libraries.dnnl) return false;
  const cpu = nativeCpuTable();
  if (process.arch === 'x64' && cpu?.arch === 'x64') return cpu.features.avx512 === true;
  return null;
}
