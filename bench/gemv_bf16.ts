/**
 * The thin bf16 product x·Wᵀ of a decode step (src/native/gemv_bf16.cc: M rows of x, a batch-M
 * step) on SmolLM2-135M's layer shapes, each weight distinct per layer as in a decode step, so the
 * weights come from memory (212 MB a step), not from a cache: GB/s of weight read per shape, the
 * whole step's, the step with q/k/v and gate/up fused into one product each, a 1×1 product (the
 * call's fixed cost) and `Buffer.indexOf` over as many bytes (a plain memory read in the same
 * sitting, the yardstick). With `--rows 2,4,8` each M > 1 also runs oneDNN's product on weights
 * packed once (gemm_bf16_packed.cc: what ops/packed_weights.ts uses past THIN_ROWS) beside the plain
 * weights' product (the thin kernels up to kThinBf16Rows rows, oneDNN's reorder per call past it;
 * each table names the kernel): the measurement behind both limits.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/gemv_bf16.js [--rows 1,8] [--layers 30] [--passes 5]
 *
 * One thread, as bench:generate's children run.
 */
import type { HostBackend, PackedWeight } from '../src/tensor/backend.js';
import { hostKernels } from '../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend, nativeInternals } from '../src/tensor/backends/native.js';
import { Rng } from '../src/util/rng.js';

const HIDDEN = 576;
const KV = 192;
const FFN = 1536;

/** A layer's products in a decode step's order: [name, rows of W (N), its width (K)]. */
type Shape = readonly [name: string, N: number, K: number];

const UNFUSED: Shape[] = [
  ['q 576→576', HIDDEN, HIDDEN],
  ['k 576→192', KV, HIDDEN],
  ['v 576→192', KV, HIDDEN],
  ['o 576→576', HIDDEN, HIDDEN],
  ['gate 576→1536', FFN, HIDDEN],
  ['up 576→1536', FFN, HIDDEN],
  ['down 1536→576', HIDDEN, FFN],
];

const FUSED: Shape[] = [
  ['qkv 576→960', HIDDEN + 2 * KV, HIDDEN],
  ['o 576→576', HIDDEN, HIDDEN],
  ['gate;up 576→3072', 2 * FFN, HIDDEN],
  ['down 1536→576', HIDDEN, FFN],
];

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

/** --rows: the M values, a comma-separated list of whole numbers from 1. */
function rowsFlag(): number[] {
  const i = process.argv.indexOf('--rows');
  if (i < 0) return [1];
  const rows = (process.argv[i + 1] ?? '').split(',').map(Number);
  if (rows.length === 0 || rows.some((m) => !Number.isInteger(m) || m < 1)) {
    console.error(`--rows: expected whole numbers from 1 separated by commas, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return rows;
}

function bf16Random(k: HostBackend, rng: Rng, n: number): Uint16Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = rng.normal() * 0.05;
  const out = new Uint16Array(n);
  k.toBf16(f, out);
  return out;
}

interface Layer {
  readonly weights: Uint16Array[];
}

/** One product of a step: shape s of `layer` against x's M rows into out. */
type Product = (layer: number, s: number, x: Uint16Array, out: Float32Array) => void;

/** The plain product (the thin kernel up to kThinBf16Rows rows, oneDNN's primitive past it). */
function plainProduct(k: HostBackend, shapes: Shape[], layers: Layer[], M: number): Product {
  const gemm = k.bfloat16!.gemm;
  return (l, s, x, out) => gemm(false, true, M, shapes[s][1], shapes[s][2], 1, x, 0, layers[l].weights[s], 0, 0, out, 0, 1);
}

/** oneDNN's product on every weight packed once for M rows (its packing is not timed). */
function packedProduct(k: HostBackend, shapes: Shape[], layers: Layer[], M: number): Product {
  const bf = k.bfloat16!;
  const packed: PackedWeight[][] = layers.map((layer) =>
    shapes.map(([, N, K], s) => {
      const p = bf.packWeight!(layer.weights[s], N, K, true, M);
      if (!p) throw new Error(`packWeight refused ${N}×${K} for ${M} rows`);
      return p;
    }),
  );
  return (l, s, x, out) => {
    if (!bf.gemmPacked!(M, x, packed[l][s], 0, out, null)) throw new Error(`gemmPacked refused ${M} rows`);
  };
}

/** Per shape, the best pass's total seconds over every layer; and the best whole pass. */
function timeStep(product: Product, shapes: Shape[], layers: Layer[], x: Map<number, Uint16Array>, M: number, passes: number): { perShape: number[]; step: number } {
  const outs = shapes.map(([, N]) => new Float32Array(M * N));
  const perShape = shapes.map(() => Infinity);
  let step = Infinity;
  for (let p = 0; p < passes + 1; p++) {
    const sums = shapes.map(() => 0);
    const t0 = process.hrtime.bigint();
    for (let l = 0; l < layers.length; l++) {
      for (let s = 0; s < shapes.length; s++) {
        const a = process.hrtime.bigint();
        product(l, s, x.get(shapes[s][2])!, outs[s]);
        sums[s] += Number(process.hrtime.bigint() - a) / 1e9;
      }
    }
    const total = Number(process.hrtime.bigint() - t0) / 1e9;
    if (p === 0) continue; // warm-up
    step = Math.min(step, total);
    for (let s = 0; s < shapes.length; s++) perShape[s] = Math.min(perShape[s], sums[s]);
  }
  return { perShape, step };
}

interface Timing { perShape: number[]; step: number }

/** One table: µs a call and GB/s of weight per shape and for the step, plain weights and (M > 1) packed side by side. */
function report(title: string, shapes: Shape[], layers: number, thin: Timing, packed: Timing | null): void {
  console.log(`\n${title}: ${layers} layers, best of the passes`);
  console.log(packed ? '| product | plain µs | plain GB/s | packed µs | packed GB/s |' : '| product | µs a call | GB/s |');
  console.log(packed ? '|---|---|---|---|---|' : '|---|---|---|');
  const cells = (seconds: number, bytes: number, unit: 1e3 | 1e6): string =>
    `${(seconds * unit).toFixed(unit === 1e6 ? 1 : 2)} | ${(bytes / seconds / 1e9).toFixed(1)}`;
  let bytes = 0;
  shapes.forEach(([name, N, K], s) => {
    const b = N * K * 2;
    bytes += b * layers;
    const row = [cells(thin.perShape[s] / layers, b, 1e6)];
    if (packed) row.push(cells(packed.perShape[s] / layers, b, 1e6));
    console.log(`| ${name} | ${row.join(' | ')} |`);
  });
  const step = [cells(thin.step, bytes, 1e3)];
  if (packed) step.push(cells(packed.step, bytes, 1e3));
  console.log(`| the step, ms (${(bytes / 1e6).toFixed(0)} MB, ${shapes.length * layers} products) | ${step.join(' | ')} |`);
}

/** Seconds of the best of `n` runs of fn. */
function best(n: number, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    b = Math.min(b, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return b;
}

function main(): void {
  const loaded = loadNativeBackend();
  const k = loaded.backend ? hostKernels(loaded.backend) : null;
  if (!k?.bfloat16) {
    console.error(`native addon with bf16 unavailable: ${loaded.reason ?? 'no bf16 kernels'}`);
    process.exit(1);
  }
  k.setThreads(1);
  const layerCount = flag('--layers', 30);
  const passes = flag('--passes', 5);
  const rng = new Rng(7);
  const make = (shapes: Shape[]): Layer[] =>
    Array.from({ length: layerCount }, () => ({ weights: shapes.map(([, N, K]) => bf16Random(k, rng, N * K)) }));

  // The call's fixed cost: a 1×1 product (N-API arguments, dispatch, the kernel's set-up).
  const one = new Uint16Array(1);
  const c = new Float32Array(1);
  const calls = 20000;
  const overhead = best(5, () => {
    for (let i = 0; i < calls; i++) k.bfloat16!.gemm(false, true, 1, 1, 1, 1, one, 0, one, 0, 0, c, 0, 1);
  }) / calls;
  console.log(`${k.description}; 1 thread`);
  console.log(`1×1 product (the call's fixed cost): ${(overhead * 1e6).toFixed(2)} µs a call`);

  const unfused = make(UNFUSED);
  const fused = make(FUSED);
  for (const M of rowsFlag()) {
    const x = new Map([HIDDEN, FFN].map((n) => [n, bf16Random(k, rng, M * n)] as const));
    for (const [title, shapes, layers] of [['Unfused (7 products a layer)', UNFUSED, unfused], ['q/k/v and gate/up fused (4 products a layer)', FUSED, fused]] as const) {
      const thin = timeStep(plainProduct(k, shapes, layers, M), shapes, layers, x, M, passes);
      const kernel = nativeInternals()?.lastBf16GemmImpl() ?? 'unknown';
      const packed = M > 1 ? timeStep(packedProduct(k, shapes, layers, M), shapes, layers, x, M, passes) : null;
      report(`M ${M}, ${title}, plain weights by ${kernel}`, shapes, layerCount, thin, packed);
    }
  }

  // A plain read of as many bytes: indexOf scans for a byte that is not there.
  const bytes = unfused.reduce((n, l) => n + l.weights.reduce((m, w) => m + w.byteLength, 0), 0);
  const plain = Buffer.alloc(bytes, 2); // written: untouched zero pages would all read one page
  const read = best(passes, () => void plain.indexOf(1));
  console.log(`\nBuffer.indexOf over ${(bytes / 1e6).toFixed(0)} MB: ${(bytes / read / 1e9).toFixed(1)} GB/s`);
}

main();
