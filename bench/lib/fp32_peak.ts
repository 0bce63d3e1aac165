/**
 * This core's float32 GEMM peak: the yardstick a float32 training step's model FLOPs utilisation is
 * read against (bench:models' llama rows). The float32 twin of bf16_peak.ts: the engine's own float32
 * GEMM entry point at the same large square shapes, best time of repeated runs.
 */
import type { HostBackend } from '../../src/tensor/backend.js';
import { Rng } from '../../src/util/rng.js';
import { type Bf16Peak, PEAK_SHAPES, bestSeconds } from './bf16_peak.js';

/** A GEMM peak: best GFLOP/s over PEAK_SHAPES, the shape that reached it, and each shape's figure. */
export type GemmPeak = Bf16Peak;

/** Times the float32 gemm at each of PEAK_SHAPES on `k` (its thread count as set) and returns the best. */
export function measureFp32GemmPeak(k: HostBackend): GemmPeak {
  const rng = new Rng(4);
  const byShape: Record<string, number> = {};
  let best = { gflops: 0, shape: '' };
  for (const n of PEAK_SHAPES) {
    const [a, b, c] = [Float32Array.from({ length: n * n }, () => rng.normal()), Float32Array.from({ length: n * n }, () => rng.normal()), new Float32Array(n * n)];
    const gflops = (2 * n ** 3) / bestSeconds(() => k.gemm(false, false, n, n, n, 1, a, 0, b, 0, 0, c, 0, 1)) / 1e9;
    const shape = `${n}³`;
    byShape[shape] = gflops;
    if (gflops > best.gflops) best = { gflops, shape };
  }
  return { ...best, byShape };
}
