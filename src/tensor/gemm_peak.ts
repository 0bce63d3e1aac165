/**
 * This core's GEMM peak: the yardstick model FLOPs utilisation (MFU) is read against — the engine's
 * own float32 or bf16 GEMM entry point (bf16 operands, float32 accumulation) at large square shapes,
 * best time of repeated runs (the figure least disturbed by other processes). The benches take it
 * over ~0.4 s per shape; a training run's summary takes a shorter probe of one shape.
 */
import { Rng } from '../util/rng.js';
import type { BackendInfo, HostBackend } from './backend.js';
import { hostKernels } from './backends/cpu/storage.js';

/** Best seconds per call over ~`budgetMs` of repeated runs (at least five) after a warm-up. */
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

export interface GemmPeak {
  /** The best GEMM throughput over the shapes, GFLOP/s. */
  gflops: number;
  /** The shape that reached it. */
  shape: string;
  /** GFLOP/s per shape. */
  byShape: Record<string, number>;
}

/** The square shapes the benches' peak is taken over (N³; beta 0). */
export const PEAK_SHAPES = [1024, 2048];

function randomFloats(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** One N³ product on `k` in the dtype: a closure the timer calls. */
function gemmAt(k: HostBackend, dtype: 'fp32' | 'bf16', n: number): () => void {
  const rng = new Rng(4);
  const c = new Float32Array(n * n);
  if (dtype === 'fp32') {
    const [a, b] = [randomFloats(rng, n * n), randomFloats(rng, n * n)];
    return () => k.gemm(false, false, n, n, n, 1, a, 0, b, 0, 0, c, 0, 1);
  }
  if (!k.bfloat16) throw new Error(`measureGemmPeak: the ${k.name} backend has no bf16 GEMM`);
  const [a, b] = [new Uint16Array(n * n), new Uint16Array(n * n)];
  k.toBf16(randomFloats(rng, n * n), a);
  k.toBf16(randomFloats(rng, n * n), b);
  const bf16 = k.bfloat16;
  return () => bf16.gemm(false, false, n, n, n, 1, a, 0, b, 0, 0, c, 0, 1);
}

/** Times the dtype's GEMM at each shape on cpu backend `b` (its thread count as set) and returns the best. */
export function measureGemmPeak(b: BackendInfo, dtype: 'fp32' | 'bf16', shapes: readonly number[] = PEAK_SHAPES, budgetMs = 400): GemmPeak {
  const k = hostKernels(b);
  const byShape: Record<string, number> = {};
  let best = { gflops: 0, shape: '' };
  for (const n of shapes) {
    const gflops = (2 * n ** 3) / bestSeconds(gemmAt(k, dtype, n), budgetMs) / 1e9;
    const shape = `${n}³`;
    byShape[shape] = gflops;
    if (gflops > best.gflops) best = { gflops, shape };
  }
  return { ...best, byShape };
}
