/**
 * The one-row bf16 product x·Wᵀ of a batch-1 decode step (src/native/gemv_bf16.cc) on SmolLM2-135M's
 * layer shapes, each weight distinct per layer as in a decode step, so the weights come from memory
 * (212 MB a step), not from a cache: GB/s of weight read per shape, the whole step's, the step with
 * q/k/v and gate/up fused into one product each, a 1×1 product (the call's fixed cost) and
 * `Buffer.indexOf` over as many bytes (a plain memory read in the same sitting, the yardstick).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/gemv_bf16.js [--layers 30] [--passes 5]
 *
 * One thread, as bench:generate's children run.
 */
import type { HostBackend } from '../src/tensor/backend.js';
import { hostKernels } from '../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend } from '../src/tensor/backends/native.js';
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

/** Per shape, the best pass's total seconds over every layer; and the best whole pass. */
function timeStep(k: HostBackend, shapes: Shape[], layers: Layer[], x: Map<number, Uint16Array>, passes: number): { perShape: number[]; step: number } {
  const gemm = k.bfloat16!.gemm;
  const outs = shapes.map(([, N]) => new Float32Array(N));
  const perShape = shapes.map(() => Infinity);
  let step = Infinity;
  for (let p = 0; p < passes + 1; p++) {
    const sums = shapes.map(() => 0);
    const t0 = process.hrtime.bigint();
    for (const layer of layers) {
      for (let s = 0; s < shapes.length; s++) {
        const [, N, K] = shapes[s];
        const a = process.hrtime.bigint();
        gemm(false, true, 1, N, K, 1, x.get(K)!, 0, layer.weights[s], 0, 0, outs[s], 0, 1);
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

function report(title: string, shapes: Shape[], layers: number, t: { perShape: number[]; step: number }): void {
  console.log(`\n${title}: ${layers} layers, best of the passes`);
  console.log('| product | µs a call | GB/s |');
  console.log('|---|---|---|');
  let bytes = 0;
  shapes.forEach(([name, N, K], s) => {
    const b = N * K * 2;
    bytes += b * layers;
    const per = t.perShape[s] / layers;
    console.log(`| ${name} | ${(per * 1e6).toFixed(1)} | ${(b / per / 1e9).toFixed(1)} |`);
  });
  console.log(`| the step (${(bytes / 1e6).toFixed(0)} MB, ${shapes.length * layers} products) | ${(t.step * 1e3).toFixed(2)} ms | ${(bytes / t.step / 1e9).toFixed(1)} |`);
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
  const x = new Map([HIDDEN, FFN].map((n) => [n, bf16Random(k, rng, n)] as const));
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
  report('Unfused (7 products a layer)', UNFUSED, layerCount, timeStep(k, UNFUSED, unfused, x, passes));
  const fused = make(FUSED);
  report('q/k/v and gate/up fused (4 products a layer)', FUSED, layerCount, timeStep(k, FUSED, fused, x, passes));

  // A plain read of as many bytes: indexOf scans for a byte that is not there.
  const bytes = unfused.reduce((n, l) => n + l.weights.reduce((m, w) => m + w.byteLength, 0), 0);
  const plain = Buffer.alloc(bytes, 2); // written: untouched zero pages would all read one page
  const read = best(passes, () => void plain.indexOf(1));
  console.log(`\nBuffer.indexOf over ${(bytes / 1e6).toFixed(0)} MB: ${(bytes / read / 1e9).toFixed(1)} GB/s`);
}

main();
