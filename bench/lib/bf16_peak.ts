/**
 * This core's bf16 GEMM peak: the yardstick the models' bf16 GEMM and convolution throughput is
 * read against (bench:models --precision bf16, bench:native-gemm --bf16). A oneDNN bf16 matmul
 * (bf16 operands, float32 accumulation and output) at large square shapes, best time of repeated
 * runs (the figure least disturbed by other processes), through the same backend entry point the
 * engine uses.
 */
import type { HostBackend } from '../../src/tensor/backend.js';
import { Rng } from '../../src/util/rng.js';

/** Best seconds per call over ~`budgetMs` of repeated runs after a warm-up. */
export function bestSeconds(fn: () => void, budgetMs = 400): number {
  for (let i = 0; i < 3; i++) fn();
  const samples: number[] = [];
  const deadline = performance.now() + budgetMs;
  while (performance.now() < deadline || samples.length < 5) {
    const t0 = performance.now();
    let reps = 0;
    do {
      fn();
      reps++;
    } while (performance.now() - t0 < 5);
    samples.push((performance.now() - t0) / reps / 1e3);
  }
  samples.sort((a, b) => a - b);
  return samples[0];
}

export interface Bf16Peak {
  /** The best bf16 GEMM throughput over the shapes, GFLOP/s. */
  gflops: number;
  /** The shape that reached it. */
  shape: string;
  /** GFLOP/s per shape. */
  byShape: Record<string, number>;
}

/** The square shapes the peak is taken over (N³; beta 0). */
export const PEAK_SHAPES = [1024, 2048];

function randomBf16(k: HostBackend, rng: Rng, n: number): Uint16Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal();
  const out = new Uint16Array(n);
  k.toBf16(x, out);
  return out;
}

/** Times gemmBf16 at each of PEAK_SHAPES on `k` (its thread count as set) and returns the best. */
export function measureBf16GemmPeak(k: HostBackend): Bf16Peak {
  const rng = new Rng(4);
  const byShape: Record<string, number> = {};
  let best = { gflops: 0, shape: '' };
  for (const n of PEAK_SHAPES) {
    const [a, b, c] = [randomBf16(k, rng, n * n), randomBf16(k, rng, n * n), new Float32Array(n * n)];
    const gflops = (2 * n ** 3) / bestSeconds(() => k.bfloat16!.gemm(false, false, n, n, n, 1, a, 0, b, 0, 0, c, 0, 1)) / 1e9;
    const shape = `${n}³`;
    byShape[shape] = gflops;
    if (gflops > best.gflops) best = { gflops, shape };
  }
  return { ...best, byShape };
}
