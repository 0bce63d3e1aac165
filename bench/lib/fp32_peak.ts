/**
 * This core's float32 GEMM peak: the yardstick a float32 training step's model FLOPs utilisation is
 * read against (bench:models' llama rows): src/tensor/gemm_peak.ts over the benches' shapes.
 */
import type { HostBackend } from '../../src/tensor/backend.js';
import { type GemmPeak, measureGemmPeak } from '../../src/tensor/gemm_peak.js';

export type { GemmPeak };

/** Times the float32 gemm at each of PEAK_SHAPES on `k` (its thread count as set) and returns the best. */
export function measureFp32GemmPeak(k: HostBackend): GemmPeak {
  return measureGemmPeak(k, 'fp32');
}
