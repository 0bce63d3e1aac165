/**
 * This core's bf16 GEMM peak: the yardstick the models' bf16 GEMM and convolution throughput is
 * read against (bench:models --precision bf16, bench:native-gemm --bf16): src/tensor/gemm_peak.ts
 * over the benches' shapes.
 */
import type { HostBackend } from '../../src/tensor/backend.js';
import { type GemmPeak, measureGemmPeak } from '../../src/tensor/gemm_peak.js';

export { PEAK_SHAPES, bestSeconds } from '../../src/tensor/gemm_peak.js';

export type Bf16Peak = GemmPeak;

/** Times gemmBf16 at each of PEAK_SHAPES on `k` (its thread count as set) and returns the best. */
export function measureBf16GemmPeak(k: HostBackend): Bf16Peak {
  return measureGemmPeak(k, 'bf16');
}
