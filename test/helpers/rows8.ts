import { nativeCpuTable } from '../../src/tensor/backends/native.js';
import { backend } from '../../src/tensor/dispatch.js';
import { isRows8 } from '../../src/tensor/quant/rows8.js';

/**
 * Whether a generator's load here holds a Q4_0, Q8_0, Q5_0, Q4_K or Q6_K matrix (whole groups of
 * eight rows) interleaved (q4_0x8, q8_0x8, q5_0x8, q4_kx8, q6_kx8): on the native backend where its CPU table has AVX512-VNNI
 * (src/native/quant_rows8.h rows8Products).
 */
export function repacksRows8(): boolean {
  const cpu = nativeCpuTable();
  return backend().name === 'native' && cpu?.arch === 'x64' && cpu.features.avx512 && cpu.features.avx512vnni;
}

/** The dtype a generator's load holds a `type` matrix of whole groups of eight rows in here: its interleaved format where this CPU repacks it. */
export function heldByGenerator(type: string): string {
  return repacksRows8() && isRows8(`${type}x8`) ? `${type}x8` : type;
}
