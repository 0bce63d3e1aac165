/**
 * The native quantized products (src/native/quant_linear.cc) on Qwen2.5-0.5B's MLP shapes (hidden
 * 896, intermediate 4864): per format and rows of x (M), the integer path ("dot": x quantized per 32,
 * integer dot products at the CPU table's best ISA) against dequantized 128-row tiles + the fp32 GEMM
 * ("gemm"), and the fp32 product on the dense weight (the same values as float32: 4 bytes a weight)
 * as the yardstick. Several distinct weights per shape are cycled so they come from memory, as in a
 * decode step. Prints ms per product and GB/s of quantized weight read; what decides kQuantDotRows.
 * "auto" is what quantLinear picks unforced (with AVX512-VNNI, from 8 rows, 17 for Q8_0/Q4_0/Q5_0:
 * the integer tiles, quant_tiles_int8.cc).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/quant_linear.js [--rows 1,4,8,16] [--formats q8_0,q4_k] [--threads 1]
 *     [--shapes qwen|smollm2] [--copies 4]
 *
 * --shapes smollm2 takes SmolLM2-135M's (hidden 576, intermediate 1536); --copies 1 keeps one weight
 * per shape, hot in the caches after its first pass: the kernel's own rate, without the memory's.
 *
 * SMOLCLUSTER_CPU caps the level as everywhere (avx2, generic …).
 */
import { hostKernels } from '../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend, nativeCpuTable, nativeInternals } from '../src/tensor/backends/native.js';
import { type QuantType, quantFormat, quantizeRows, dequantizeRows } from '../src/tensor/quant/formats.js';
import { quantKernelsFor, setBackend } from '../src/tensor/dispatch.js';
import type { DeviceBuffer } from '../src/tensor/storage.js';
import { Rng } from '../src/util/rng.js';

function listFlag(name: string, fallback: string): string[] {
  const i = process.argv.indexOf(name);
  return (i > 0 ? process.argv[i + 1] : fallback).split(',');
}

const loaded = loadNativeBackend();
if (!loaded.backend) {
  console.error(`native addon unavailable: ${loaded.reason}`);
  process.exit(1);
}
setBackend('native');
const host = hostKernels(loaded.backend);
host.setThreads(Number(listFlag('--threads', '1')[0]));
const internals = nativeInternals()!;
const rowsList = listFlag('--rows', '1,2,4,8,12,16').map(Number);
const formats = listFlag('--formats', 'q8_0,q4_0,q5_0,q4_k,q6_k,mlx4') as QuantType[];
const SHAPE_SETS: Record<string, [string, number, number][]> = {
  qwen: [['gate 896→4864', 4864, 896], ['down 4864→896', 896, 4864]],
  smollm2: [['gate 576→1536', 1536, 576], ['down 1536→576', 576, 1536]],
};
const SHAPES = SHAPE_SETS[listFlag('--shapes', 'qwen')[0]];
if (!SHAPES) throw new Error(`--shapes: one of ${Object.keys(SHAPE_SETS).join(', ')}`);
const COPIES = Number(listFlag('--copies', '4')[0]);
const buf = (a: ArrayBufferView | null): DeviceBuffer => a as unknown as DeviceBuffer;

const rng = new Rng(1);
const gaussian = (n: number, s = 1): Float32Array => Float32Array.from({ length: n }, () => rng.normal() * s);

/** Median ms of `fn` over passes of every copy. */
function time(fn: (copy: number) => void): number {
  for (let c = 0; c < COPIES; c++) fn(c);
  const samples: number[] = [];
  for (let p = 0; p < 5; p++) {
    const t0 = process.hrtime.bigint();
    for (let c = 0; c < COPIES; c++) fn(c);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6 / COPIES);
  }
  samples.sort((a, b) => a - b);
  return samples[2];
}

console.log(`level ${nativeCpuTable()?.level}, ${host.getThreads()} thread(s), ${COPIES} distinct weights per shape`);
for (const [name, N, K] of SHAPES) {
  const dense = Array.from({ length: COPIES }, () => gaussian(N * K, 0.05));
  for (const type of formats) {
    if (K % quantFormat(type).blockWeights !== 0) continue;
    const w = dense.map((d) => quantizeRows(type, d, K));
    const wd = w.map((b) => {
      const out = new Float32Array(N * K);
      dequantizeRows(type, b, K, 0, N, out);
      return out;
    });
    const k = quantKernelsFor({ device: 'cpu', dtype: type });
    for (const M of rowsList) {
      const x = gaussian(M * K);
      const y = new Float32Array(M * N);
      const row: string[] = [];
      let impl = '';
      for (const path of ['dot', 'gemm'] as const) {
        internals.setQuantPath(path);
        const ms = time((c) => k.quantLinear(buf(w[c]), buf(x), M, N, K, buf(y), null));
        if (path === 'dot') impl = internals.lastQuantImpl();
        row.push(`${path} ${ms.toFixed(3)} ms (${(w[0].length / ms / 1e6).toFixed(1)} GB/s)`);
      }
      internals.setQuantPath('auto');
      const auto = time((c) => k.quantLinear(buf(w[c]), buf(x), M, N, K, buf(y), null));
      row.push(`auto ${auto.toFixed(3)} ms [${internals.lastQuantImpl()}]`);
      const fp = time((c) => host.gemm(false, true, M, N, K, 1, x, 0, wd[c], 0, 0, y, 0, 1, null));
      row.push(`fp32 ${fp.toFixed(3)} ms`);
      console.log(`${name} ${type.padEnd(5)} M=${String(M).padStart(2)} [${impl}] ${row.join('  ')}`);
    }
  }
}
