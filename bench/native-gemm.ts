/**
 * Micro-benchmarks behind the native backend's engine choices: GEMM GFLOP/s per engine on the
 * MLP/CNN shapes, and convolution / pooling times on the CNN shapes, through the same TS entry
 * points the engine uses (so N-API overhead is included).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/native-gemm.js [--threads N] [--transformer | --decode | --decode-step]
 *
 * --transformer times the GEMMs of one bench:models training step instead (gpt2 124M at batch 4,
 * gpt2-tiny and bert-mini at batch 8, context 128; backward products accumulate, beta = 1) on the
 * oneDNN engines only, the figures behind sgemm's routing of non-transposed-B products.
 *
 * --decode times x·Wᵀ at 1-16 rows (batched decode steps) on GPT-2's and SmolLM2-135M's linears and
 * heads: the thin kernel (src/native/gemm_thin.cc) against the oneDNN engines, the figures behind
 * sgemm's 4-12 row rule (docs/NATIVE.md, "Decode shapes"). Each product reuses one weight, so W is
 * read from cache after the first call.
 *
 * --decode-step [--models smollm2,gpt2] [--rows 1,2,3,4,8,12] times what a decode step really reads:
 * every linear of every layer and the head, each its own weight (SmolLM2-135M's 211 products, 538 MB
 * of float32; GPT-2 124M's 49, 494 MB), one step per M and engine, the best of a few steps, as
 * ms per step and GB/s of W (docs/PERFORMANCE.md, "The thin fp32 product"). Run it under
 * scripts/benchrun.sh: it holds one model's weights (~540 MB) at a time.
 *
 * --bf16 times the bf16 GEMM (gemmBf16: bf16 operands, float32 accumulation and output) against the
 * float32 one at large shapes and at the transformer's, with the oneDNN implementation each ran:
 * the "bf16 peak" docs/PRECISION.md compares the models' GEMM throughput with.
 *
 * --conv-bf16 times resnet18's (CIFAR, batch 32) 3×3 convolutions per pass, forward, backward-data
 * and backward-weights: the float32 engine (oneDNN Winograd at stride 1 with 16+ channels each
 * side, direct otherwise) against the bf16 kernels (direct: oneDNN 2.6.3 has no bf16 Winograd),
 * with the implementation each ran (docs/PRECISION.md, "resnet18's convolutions").
 */
import type { HostBackend as Backend, Conv2dGeometry, Pool2dGeometry } from '../src/tensor/backend.js';
import { hostKernels } from '../src/tensor/backends/cpu/storage.js';

import { loadNativeBackend, nativeInternals } from '../src/tensor/backends/native.js';
import { Rng } from '../src/util/rng.js';
import { bestSeconds } from './lib/bf16_peak.js';

function randn(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Best seconds per call over ~0.4 s of repeated runs (after a warm-up): the minimum is the
 * figure least disturbed by other processes on a shared machine. */
const time = (fn: () => void): number => bestSeconds(fn);

type GemmCase = [label: string, transA: boolean, transB: boolean, M: number, N: number, K: number, beta?: number, batch?: number];

const GEMMS: GemmCase[] = [
  ['MLP fwd  x·W1ᵀ  b32', false, true, 32, 128, 784],
  ['MLP fwd  x·W1ᵀ  b256', false, true, 256, 128, 784],
  ['MLP gW1  gyᵀ·x  b32', true, false, 128, 784, 32],
  ['MLP gW1  gyᵀ·x  b256', true, false, 128, 784, 256],
  ['MLP gx   gy·W1  b32', false, false, 32, 784, 128],
  ['MLP gx   gy·W1  b256', false, false, 256, 784, 128],
  ['MLP fwd  h·W2ᵀ  b32', false, true, 32, 10, 128],
  ['MLP gW2  gyᵀ·h  b32', true, false, 10, 128, 32],
];

/** One linear layer [tokens, inF] → outF: forward x·Wᵀ, then gx += gy·W and gW += gyᵀ·x. */
function linearCases(name: string, tokens: number, inF: number, outF: number): GemmCase[] {
  return [
    [`${name} fwd`, false, true, tokens, outF, inF, 0],
    [`${name} gx`, false, false, tokens, inF, outF, 1],
    [`${name} gW`, true, false, outF, inF, tokens, 1],
  ];
}

const TRANSFORMER_GEMMS: GemmCase[] = [
  ...linearCases('gpt2 qkv', 512, 768, 2304),
  ...linearCases('gpt2 attn-out', 512, 768, 768),
  ...linearCases('gpt2 mlp-fc', 512, 768, 3072),
  ...linearCases('gpt2 mlp-proj', 512, 3072, 768),
  ...linearCases('gpt2 lm-head', 512, 768, 50257),
  ...linearCases('tiny mlp-fc', 1024, 128, 512),
  ...linearCases('tiny lm-head', 1024, 128, 50257),
  ...linearCases('bert mlp-fc', 1024, 256, 1024),
  ...linearCases('bert mlm-head', 1024, 256, 30522),
  // Attention's products per (batch × head), as src/native/attention.cc runs them: gpt2's 48 heads.
  ['gpt2 attn q·kᵀ', false, true, 128, 128, 64, 0, 48],
  ['gpt2 attn p·v', false, false, 128, 64, 128, 0, 48],
  ['gpt2 attn gv pᵀ·gy', true, false, 128, 64, 128, 0, 48],
];

/** x·Wᵀ with `rows` rows of x for every decode linear [in → out] of GPT-2 and SmolLM2-135M. */
function decodeCases(rows: number[]): GemmCase[] {
  const linears: Array<[string, number, number]> = [
    ['gpt2 qkv', 768, 2304], ['gpt2 attn-out', 768, 768], ['gpt2 mlp-fc', 768, 3072], ['gpt2 mlp-proj', 3072, 768],
    ['gpt2 lm-head', 768, 50257], ['smol q/o', 576, 576], ['smol k/v', 576, 192], ['smol gate/up', 576, 1536],
    ['smol down', 1536, 576], ['smol lm-head', 576, 49152],
  ];
  return linears.flatMap(([name, inF, outF]) => rows.map((M): GemmCase => [`${name} M${M}`, false, true, M, outF, inF, 0]));
}

/** [out, in] of every linear a decode step runs, in order: all layers, then the head. */
const DECODE_STEPS: Record<string, { layers: number; linears: Array<[number, number]>; head: [number, number] }> = {
  smollm2: { layers: 30, linears: [[576, 576], [192, 576], [192, 576], [576, 576], [1536, 576], [1536, 576], [576, 1536]], head: [49152, 576] },
  gpt2: { layers: 12, linears: [[2304, 768], [768, 768], [3072, 768], [768, 3072]], head: [50257, 768] },
};

/** ms per decode step's products over distinct weights and GB/s of W, per rows of x and engine. */
function benchDecodeStep(native: Backend, engines: string[], models: string[], rows: number[]): void {
  const internals = nativeInternals()!;
  for (const model of models) {
    const step = DECODE_STEPS[model];
    if (!step) throw new Error(`--models: unknown model '${model}' (have ${Object.keys(DECODE_STEPS).join(', ')})`);
    const shapes = [...Array.from({ length: step.layers }, () => step.linears).flat(), step.head];
    const rng = new Rng(6);
    const weights = shapes.map(([N, K]) => Float32Array.from({ length: N * K }, () => rng.normal() * 0.02));
    const bytes = weights.reduce((sum, w) => sum + w.byteLength, 0);
    const maxN = Math.max(...shapes.map(([N]) => N));
    const maxK = Math.max(...shapes.map(([, K]) => K));
    console.log(`\n${model} decode step: ${shapes.length} x·Wᵀ over distinct weights, ${(bytes / 1e6).toFixed(0)} MB of W (${native.getThreads()} thread(s))`);
    console.log(`| rows of x | ${engines.map((e) => `${e} ms | ${e} GB/s`).join(' | ')} |`);
    console.log(`|---|${engines.map(() => '---|---').join('|')}|`);
    for (const M of rows) {
      const x = randn(rng, M * maxK);
      const C = new Float32Array(M * maxN);
      const cells = engines.map((e) => {
        internals.setGemmEngine(e);
        const runStep = () => shapes.forEach(([N, K], i) => native.gemm(false, true, M, N, K, 1, x, 0, weights[i], 0, 0, C, 0, 1));
        let best = Infinity;
        for (let rep = 0; rep < 5; rep++) {
          const t0 = process.hrtime.bigint();
          runStep();
          best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
        }
        return `${(best * 1e3).toFixed(1)} | ${(bytes / best / 1e9).toFixed(2)}`;
      });
      console.log(`| ${M} | ${cells.join(' | ')} |`);
    }
    internals.setGemmEngine('auto');
  }
}

/** The comma-separated list after `flag`, or `fallback`. */
function listFlag(flag: string, fallback: string): string[] {
  const i = process.argv.indexOf(flag);
  return (i > 0 ? process.argv[i + 1] : fallback).split(',').filter(Boolean);
}

function benchGemm(native: Backend, engines: string[], cases: GemmCase[]): void {
  const internals = nativeInternals()!;
  const rng = new Rng(1);
  console.log(`\nGEMM GFLOP/s (${native.getThreads()} thread(s)); columns: ${engines.join(', ')}`);
  for (const [label, ta, tb, M, N, K, beta = 0, batch = 1] of cases) {
    const A = randn(rng, batch * M * K);
    const B = randn(rng, batch * K * N);
    const C = new Float32Array(batch * M * N);
    const [sA, sB, sC] = batch > 1 ? [M * K, K * N, M * N] : [0, 0, 0];
    const cells = engines.map((e) => {
      internals.setGemmEngine(e);
      const s = time(() => native.gemm(ta, tb, M, N, K, 1, A, sA, B, sB, beta, C, sC, batch));
      return ((2 * M * N * K * batch) / s / 1e9).toFixed(1).padStart(8);
    });
    const form = `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} β${beta}`;
    const size = `${batch > 1 ? `${batch}×` : ''}${M}x${N}x${K}`;
    console.log(`  ${label.padEnd(22)} ${form} ${size.padEnd(15)} ${cells.join(' ')}`);
  }
  internals.setGemmEngine('auto');
}

/** A float32 buffer rounded to bf16 by the backend under test. */
function bf16Of(native: Backend, x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  native.toBf16(x, out);
  return out;
}

const BF16_GEMMS: GemmCase[] = [
  ['square 1024³', false, false, 1024, 1024, 1024],
  ['square 2048³', false, false, 2048, 2048, 2048],
  ['gpt2 fc   x·Wᵀ [512,768]→3072', false, true, 512, 3072, 768],
  ['gpt2 proj gx  [512,3072]·W', false, false, 512, 768, 3072, 1],
  ['gpt2 fc   gW  gyᵀ·x, beta 1 (adding)', true, false, 3072, 768, 512, 1],
  ['gpt2 fc   gW  gyᵀ·x, beta 0 (a zeroed gradient)', true, false, 3072, 768, 512, 0],
  ['gpt2 head x·Eᵀ [512,768]→50257', false, true, 512, 50257, 768],
  ['attention q·kᵀ 48×[128,64]', false, true, 128, 128, 64, 0, 48],
];

/** GFLOP/s of the float32 GEMM and the bf16 one per shape, and the bf16 implementation oneDNN chose. */
function benchBf16(native: Backend): void {
  const internals = nativeInternals()!;
  const rng = new Rng(4);
  console.log(`
bf16 GEMM (bf16 operands, float32 accumulation and C) against float32, GFLOP/s (${native.getThreads()} thread(s))`);
  console.log('| shape | float32 | bf16 | bf16 / float32 | bf16 implementation |');
  console.log('|---|---|---|---|---|');
  for (const [label, ta, tb, M, N, K, beta = 0, batch = 1] of BF16_GEMMS) {
    const a = randn(rng, batch * M * K);
    const b = randn(rng, batch * K * N);
    const c = new Float32Array(batch * M * N);
    const [ab, bb] = [bf16Of(native, a), bf16Of(native, b)];
    const flops = 2 * M * N * K * batch;
    const f32 = flops / time(() => native.gemm(ta, tb, M, N, K, 1, a, M * K, b, K * N, beta, c, M * N, batch)) / 1e9;
    const bf = flops / time(() => native.bfloat16!.gemm(ta, tb, M, N, K, 1, ab, M * K, bb, K * N, beta, c, M * N, batch)) / 1e9;
    console.log(`| ${label} | ${f32.toFixed(0)} | ${bf.toFixed(0)} | ${(bf / f32).toFixed(2)}× | ${internals.lastBf16GemmImpl()} |`);
  }
}

function conv(batch: number, inC: number, hw: number, outC: number): Conv2dGeometry {
  return { batch, inC, inH: hw, inW: hw, outC, kH: 3, kW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, outH: hw, outW: hw };
}

function benchConv(native: Backend, engines: string[]): void {
  const internals = nativeInternals()!;
  const rng = new Rng(2);
  console.log(`\nconv 3x3 pad 1, ms per call (${native.getThreads()} thread(s))`);
  for (const g of [conv(64, 1, 28, 32), conv(64, 32, 14, 64)]) {
    const x = randn(rng, g.batch * g.inC * g.inH * g.inW);
    const w = randn(rng, g.outC * g.inC * 9);
    const b = randn(rng, g.outC);
    const y = new Float32Array(g.batch * g.outC * g.outH * g.outW);
    const gx = new Float32Array(x.length);
    const gw = new Float32Array(w.length);
    const gb = new Float32Array(g.outC);
    for (const e of engines) {
      internals.setConvEngine(e);
      const f = time(() => native.conv2d(g, x, w, b, y)) * 1e3;
      const bw = time(() => native.conv2dBackward(g, x, w, y, null, gw, gb)) * 1e3;
      const bwx = time(() => native.conv2dBackward(g, x, w, y, gx, gw, gb)) * 1e3;
      console.log(`  [${g.batch},${g.inC},${g.inH},${g.inW}]→${g.outC} ${e.padEnd(13)} fwd ${f.toFixed(3)}  bwd(w,b) ${bw.toFixed(3)}  bwd(x,w,b) ${bwx.toFixed(3)}`);
    }
  }
  internals.setConvEngine('auto');
}

/** resnet18 CIFAR's 3×3 convolutions at batch 32 (stride 1 each stage, and each stage's stride-2 entry). */
const RESNET18_CONVS: [string, Conv2dGeometry][] = [
  ['stem 3→64 @32', conv(32, 3, 32, 64)],
  ['64→64 @32', conv(32, 64, 32, 64)],
  ['64→128 @32 s2', { ...conv(32, 64, 32, 128), strideH: 2, strideW: 2, outH: 16, outW: 16 }],
  ['128→128 @16', conv(32, 128, 16, 128)],
  ['128→256 @16 s2', { ...conv(32, 128, 16, 256), strideH: 2, strideW: 2, outH: 8, outW: 8 }],
  ['256→256 @8', conv(32, 256, 8, 256)],
  ['256→512 @8 s2', { ...conv(32, 256, 8, 512), strideH: 2, strideW: 2, outH: 4, outW: 4 }],
  ['512→512 @4', conv(32, 512, 4, 512)],
];

/** ms per pass of each resnet18 convolution: float32 (Winograd where eligible) and bf16 (direct). */
function benchConvBf16(native: Backend): void {
  const internals = nativeInternals()!;
  const rng = new Rng(5);
  console.log(`\nresnet18 convolutions, batch 32, ms per call (${native.getThreads()} thread(s)); backward-data = bwd(x,w) − bwd(w)`);
  console.log('| shape | pass | float32 (engine auto) | bf16 | float32 / bf16 | bf16 implementation |');
  console.log('|---|---|---|---|---|---|');
  for (const [label, g] of RESNET18_CONVS) {
    const x = randn(rng, g.batch * g.inC * g.inH * g.inW);
    const w = randn(rng, g.outC * g.inC * 9);
    const gy = randn(rng, g.batch * g.outC * g.outH * g.outW);
    const [xb, wb] = [bf16Of(native, x), bf16Of(native, w)];
    const y = new Float32Array(gy.length);
    const gx = new Float32Array(x.length);
    const gw = new Float32Array(w.length);
    const passes = (f32: boolean): number[] => {
      const fwd = time(() => (f32 ? native.conv2d(g, x, w, null, y) : native.bfloat16!.conv2d(g, xb, wb, null, y)));
      const bw = time(() => (f32 ? native.conv2dBackward(g, x, w, gy, null, gw, null) : native.bfloat16!.conv2dBackward(g, xb, wb, gy, null, gw, null)));
      const both = time(() => (f32 ? native.conv2dBackward(g, x, w, gy, gx, gw, null) : native.bfloat16!.conv2dBackward(g, xb, wb, gy, gx, gw, null)));
      return [fwd, Math.max(0, both - bw), bw].map((t) => t * 1e3);
    };
    const f32 = passes(true);
    const bf16 = passes(false);
    native.bfloat16!.conv2d(g, xb, wb, null, y);
    const forwardImpl = internals.lastConvBf16Impl();
    native.bfloat16!.conv2dBackward(g, xb, wb, gy, gx, gw, null);
    const [weightsImpl, dataImpl] = internals.lastConvBf16Impl().split(' / ');
    const impls = [forwardImpl, dataImpl, weightsImpl];
    ['forward', 'backward-data', 'backward-weights'].forEach((pass, i) => {
      console.log(`| ${label} | ${pass} | ${f32[i].toFixed(2)} | ${bf16[i].toFixed(2)} | ${(f32[i] / bf16[i]).toFixed(2)} | ${impls[i]} |`);
    });
  }
}

function benchPool(native: Backend): void {
  const rng = new Rng(3);
  const g: Pool2dGeometry = { batch: 64, channels: 32, inH: 28, inW: 28, kH: 2, kW: 2, strideH: 2, strideW: 2, padH: 0, padW: 0, outH: 14, outW: 14 };
  const x = randn(rng, 64 * 32 * 28 * 28);
  const y = new Float32Array(64 * 32 * 14 * 14);
  const arg = new Int32Array(y.length);
  const gx = new Float32Array(x.length);
  console.log('\npool 2x2/2 on [64,32,28,28], ms per call');
  console.log(`  max fwd ${(time(() => native.maxPool2d(g, x, y, arg)) * 1e3).toFixed(3)}  max bwd ${(time(() => native.maxPool2dBackward(g, y, arg, gx)) * 1e3).toFixed(3)}`);
  console.log(`  avg fwd ${(time(() => native.avgPool2d(g, x, y)) * 1e3).toFixed(3)}  avg bwd ${(time(() => native.avgPool2dBackward(g, y, gx)) * 1e3).toFixed(3)}`);
}

function main(): void {
  const loaded = loadNativeBackend();
  const native = loaded.backend ? hostKernels(loaded.backend) : null;
  const reason = loaded.reason;
  if (!native) {
    console.error(`native addon unavailable: ${reason}`);
    process.exit(1);
  }
  const i = process.argv.indexOf('--threads');
  native.setThreads(i > 0 ? Number(process.argv[i + 1]) : 1);
  const internals = nativeInternals()!;
  console.log(`${native.description}`);
  const gemmEngines = ['auto', 'dnnl', 'dnnl_sgemm', 'cblas', 'own'].filter((e) => {
    try {
      internals.setGemmEngine(e);
      return true;
    } catch {
      return false;
    }
  });
  const convEngines = ['auto', 'dnnl-winograd', 'dnnl-blocked', 'dnnl-plain', 'im2col'].filter((e) => {
    try {
      internals.setConvEngine(e);
      return true;
    } catch {
      return false;
    }
  });
  internals.setGemmEngine('auto');
  internals.setConvEngine('auto');
  if (process.argv.includes('--conv-bf16')) {
    benchConvBf16(native);
    return;
  }
  if (process.argv.includes('--bf16')) {
    benchBf16(native);
    return;
  }
  if (process.argv.includes('--decode-step')) {
    const engines = ['auto', 'thin', 'dnnl_sgemm'].filter((e) => e === 'auto' || e === 'thin' || gemmEngines.includes(e));
    const rows = listFlag('--rows', '1,2,3,4,8,12').map(Number);
    if (rows.some((M) => !Number.isInteger(M) || M < 1 || M > 16)) throw new Error(`--rows: whole numbers in 1..16, got ${rows.join(',')}`);
    benchDecodeStep(native, engines, listFlag('--models', 'smollm2,gpt2'), rows);
    return;
  }
  if (process.argv.includes('--decode')) {
    const engines = ['auto', 'thin', 'dnnl_sgemm', 'dnnl'].filter((e) => e === 'auto' || e === 'thin' || gemmEngines.includes(e));
    benchGemm(native, engines, decodeCases([1, 2, 4, 8, 12, 16]));
    return;
  }
  if (process.argv.includes('--transformer')) {
    benchGemm(native, gemmEngines.filter((e) => e === 'auto' || e.startsWith('dnnl')), TRANSFORMER_GEMMS);
    return;
  }
  benchGemm(native, gemmEngines, GEMMS);
  benchConv(native, convEngines);
  benchPool(native);
}

main();
