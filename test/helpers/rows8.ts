import { nativeCpuTable } from '../../src/tensor/backends/native.js';
import { backend } from '../../src/tensor/dispatch.js';

/**
 * Whether a generator's load here holds a Q4_0 matrix (whole groups of eight rows) as q4_0x8: on the
 * native backend where its CPU table has AVX512-VNNI (src/native/quant_rows8.h rows8Products).
 */
export function repacksQ4_0(): boolean {
  const cpu = nativeCpuTable();
  return backend().name === 'native' && cpu?.arch === 'x64' && cpu.features.avx512 && cpu.features.avx512vnni;
}
