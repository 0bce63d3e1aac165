/**
 * Kernel-level parity of the webgpu backend with the js reference: every kernel of the contract
 * runs on the same float32 buffers on both (on SwiftShader where there is no GPU); every buffer it
 * may write is compared afterwards, within the parity suite's float32 tolerances (rtol 1e-4, atol
 * 1e-5 × the largest magnitude). Index outputs (argmax) stay on the GPU, so they are checked
 * through the backward that reads them. Skipped when the backend cannot load here, except under
 * CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AttentionGeometry, Conv2dGeometry, Kernels, Pool2dGeometry, UnaryOp } from '../../../src/tensor/backend.js';
import { jsBackend } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { closeWebGpu, type ConvKernelChoice, type GemmKernelChoice, type WebGpuBackend, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { GEMM_KERNEL_ENV, gemmKernelFromEnv } from '../../../src/tensor/backends/webgpu/backend.js';
import { OPTIONAL_FEATURES_ENV } from '../../../src/tensor/backends/webgpu/loader.js';
import { kernelsFor } from '../../../src/tensor/dispatch.js';
import { embedding } from '../../../src/tensor/ops/embedding.js';
import { linear } from '../../../src/tensor/ops/matmul.js';
import { withComputePrecision } from '../../../src/tensor/precision.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { getKernel } from '../../../src/tensor/kernel_registry.js';
import { supportsPrecision } from '../../../src/tensor/precision_support.js';
import { deviceMemory, type Storage } from '../../../src/tensor/storage.js';
import { dropThreshold } from '../../../src/util/philox.js';
import { Rng } from '../../../src/util/rng.js';
import { assertClose } from '../../helpers/tensors.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

type K = Kernels<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Bufs = any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
type Place = (values: Int32Array) => any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface KernelCase {
  name: string;
  /** The float32 buffers (inputs and outputs), the same values on both backends. */
  bufs: (r: Rng) => Float32Array[];
  /** `ix` places index values (argmax, labels, ids) where the backend's kernels read them: int32 buffers on its device. */
  run: (k: K, b: Bufs, ix: Place) => void;
  /** Runs on the device's default reduction path only (what it checks is the same on both, and it is slow on SwiftShader). */
  onePath?: true;
}

const rnd = (r: Rng, n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => scale * r.normal());
const pos = (r: Rng, n: number, lo = 0.2, hi = 3): Float32Array => Float32Array.from({ length: n }, () => lo + (hi - lo) * r.uniform());
const zeros = (n: number): Float32Array => new Float32Array(n);
/** Pairwise-distinct values (a unique max per window). */
const distinct = (r: Rng, n: number): Float32Array => {
  const v = Float32Array.from({ length: n }, (_, i) => -1 + (2 * i + 1) / n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r.uniform() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
};

/** Runs `fn` with the webgpu backend's GEMM kernel pinned (js has no such choice and runs it as is). */
function pinGemm(k: K, choice: GemmKernelChoice, fn: () => void): void {
  const gpu = k as Partial<WebGpuBackend>;
  if (gpu.gemmKernel === undefined) return fn();
  const before = gpu.gemmKernel;
  gpu.gemmKernel = choice;
  try {
    fn();
  } finally {
    gpu.gemmKernel = before;
  }
}

/** Runs `fn` with the webgpu backend's convolution kernels pinned; checks that the pinned kernel ran. */
function pinConv(k: K, choice: ConvKernelChoice, fn: () => void): void {
  const gpu = k as Partial<WebGpuBackend>;
  if (gpu.convKernel === undefined) return fn();
  const before = gpu.convKernel;
  const forwardRuns = (): number => [...gpu.stream!.dispatches].filter(([n]) => (choice === 'direct' ? n === 'conv2d' : n.startsWith('convForward'))).reduce((a, [, c]) => a + c, 0);
  const runs = forwardRuns();
  gpu.convKernel = choice;
  try {
    fn();
  } finally {
    gpu.convKernel = before;
  }
  assert.equal(forwardRuns(), runs + 1, `the ${choice} convolution ran`);
}

const UNARY: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'relu', 'gelu', 'geluErf', 'tanh', 'sigmoid', 'abs'];
const js = hostKernels(jsBackend);

function conv(batch: number, inC: number, inH: number, inW: number, outC: number, kH: number, kW: number, s: [number, number], p: [number, number]): Conv2dGeometry {
  return { batch, inC, inH, inW, outC, kH, kW, strideH: s[0], strideW: s[1], padH: p[0], padW: p[1], outH: Math.floor((inH + 2 * p[0] - kH) / s[0]) + 1, outW: Math.floor((inW + 2 * p[1] - kW) / s[1]) + 1 };
}
function pool(batch: number, channels: number, inH: number, inW: number, kH: number, kW: number, s: [number, number], p: [number, number]): Pool2dGeometry {
  return { batch, channels, inH, inW, kH, kW, strideH: s[0], strideW: s[1], padH: p[0], padW: p[1], outH: Math.floor((inH + 2 * p[0] - kH) / s[0]) + 1, outW: Math.floor((inW + 2 * p[1] - kW) / s[1]) + 1 };
}
const sizeOfConvOut = (g: Conv2dGeometry): number => g.batch * g.outC * g.outH * g.outW;
const sizeOfPoolOut = (g: Pool2dGeometry): number => g.batch * g.channels * g.outH * g.outW;

const CASES: KernelCase[] = [
  ...UNARY.map((op): KernelCase => ({
    name: `unary + unaryBackward ${op}`,
    bufs: (r) => {
      const x = op === 'log' || op === 'sqrt' ? pos(r, 300) : rnd(r, 300, 2);
      const y = zeros(300);
      js.unary(op, x, y);
      return [x, zeros(300), y, rnd(r, 300), rnd(r, 300)];
    },
    run: (k, [x, out, y, gy, gx]) => {
      k.unary(op, x, out);
      k.unaryBackward(op, x, y, gy, gx);
    },
  })),
  ...(['add', 'sub', 'mul', 'div', 'pow', 'max', 'min'] as const).map((op): KernelCase => ({
    name: `binary ${op}, both operands broadcast over [3, 4, 5]`,
    bufs: (r) => [op === 'pow' ? pos(r, 15, 0.5, 2) : rnd(r, 15), op === 'div' ? pos(r, 4, 0.5, 2) : rnd(r, 4), zeros(60)],
    run: (k, [a, b, out]) => k.binary(op, a, [5, 0, 1], b, [0, 1, 0], out, [3, 4, 5]),
  })),
  {
    name: 'binary pow with a negative base and integral exponent, 0-d operands',
    bufs: (r) => [rnd(r, 8), Float32Array.of(3), zeros(8), Float32Array.of(-2), Float32Array.of(2), zeros(1)],
    run: (k, [a, b, out, c, d, o1]) => {
      k.binary('pow', a, [1], b, [0], out, [8]);
      k.binary('pow', c, [], d, [], o1, []);
    },
  },
  {
    name: 'affine, powScalar (2, 3, 0.5), axpy, addInto, fill',
    bufs: (r) => [rnd(r, 500), zeros(500), zeros(500), pos(r, 500), zeros(500), rnd(r, 500), rnd(r, 500), zeros(7)],
    run: (k, [x, o1, o2, px, o3, y, y2, f]) => {
      k.affine(x, -1.3, 0.7, o1);
      k.powScalar(x, 3, o2);
      k.powScalar(px, 0.5, o3);
      k.powScalar(x, 2, x);
      k.axpy(0.25, o1, y);
      k.addInto(y2, o1);
      k.fill(f, 4.5);
    },
  },
  {
    name: 'sumSquares (two-stage) and mseLossBackward (reads gy on the device)',
    bufs: (r) => [rnd(r, 20000), zeros(1), rnd(r, 50), Float32Array.of(0.7), rnd(r, 50), rnd(r, 50)],
    run: (k, [x, out, diff, gy, gp, gt]) => {
      k.sumSquares(x, 4, out);
      k.mseLossBackward(diff, gy, 50, gp, gt);
    },
  },
  {
    name: 'powBackward',
    bufs: (r) => {
      const a = pos(r, 40, 0.5, 2);
      const b = rnd(r, 40);
      b[3] = 0;
      const y = Float32Array.from(a, (v, i) => Math.pow(v, b[i]));
      return [a, b, y, rnd(r, 40), zeros(40), zeros(40)];
    },
    run: (k, [a, b, y, gy, ga, gb]) => k.powBackward(a, b, y, gy, ga, gb),
  },
  {
    name: 'stridedCopy: a permute, then a slice accumulated at an offset',
    bufs: (r) => [rnd(r, 120), zeros(120), rnd(r, 60)],
    run: (k, [src, dst, acc]) => {
      k.stridedCopy(src, 0, [1, 2, 24, 6], dst, 0, [60, 15, 5, 1], [2, 4, 3, 5].map((_, i) => [2, 4, 3, 5][i]), false);
      k.stridedCopy(src, 7, [20, 1], acc, 3, [10, 1], [5, 6], true);
    },
  },
  {
    name: 'reduceSum (inner and outer axes, and everything), reduceMax + reduceMaxBackward',
    bufs: (r) => [rnd(r, 600), zeros(12), zeros(1), distinct(r, 600), zeros(12), rnd(r, 12), zeros(600)],
    run: (k, [x, s, all, xm, m, gy, gx], ix) => {
      k.reduceSum(x, 3, 50, 4, s);
      k.reduceSum(x, 1, 600, 1, all);
      const arg = ix(new Int32Array(12));
      k.reduceMax(xm, 3, 50, 4, m, arg);
      k.reduceMaxBackward(gy, arg, 3, 50, 4, gx);
    },
  },
  {
    // Many equal maxima in a row, spread over every subgroup: the smallest index wins on both reduction paths.
    name: 'reduceMax with ties picks the smallest index; its backward routes the gradient there',
    bufs: (r) => [Float32Array.from({ length: 2 * 200 * 3 }, () => Math.floor(3 * r.uniform())), zeros(6), rnd(r, 6), zeros(1200)],
    run: (k, [x, m, gy, gx], ix) => {
      const arg = ix(new Int32Array(6));
      k.reduceMax(x, 2, 200, 3, m, arg);
      k.reduceMaxBackward(gy, arg, 2, 200, 3, gx);
    },
  },
  {
    name: 'softmax, logSoftmax and their backward',
    bufs: (r) => {
      const x = rnd(r, 6 * 130, 3);
      const y = zeros(780);
      const ly = zeros(780);
      js.softmax(x, 6, 130, y);
      js.logSoftmax(x, 6, 130, ly);
      return [x, zeros(780), zeros(780), y, ly, rnd(r, 780), rnd(r, 780), rnd(r, 780)];
    },
    run: (k, [x, o, lo, y, ly, gy, gx, glx]) => {
      k.softmax(x, 6, 130, o);
      k.logSoftmax(x, 6, 130, lo);
      k.softmaxBackward(y, gy, 6, 130, gx);
      k.logSoftmaxBackward(ly, gy, 6, 130, glx);
    },
  },
  {
    name: 'row kernels past 65,535 rows (the workgroup grid folds into two dimensions): softmax, reduceSum',
    onePath: true,
    bufs: (r) => [rnd(r, 70000 * 3), zeros(70000 * 3), zeros(70000)],
    run: (k, [x, y, s]) => {
      k.softmax(x, 70000, 3, y);
      k.reduceSum(x, 70000, 3, 1, s);
    },
  },
  {
    name: 'softmaxCrossEntropy with ignored rows, its in-place gradient and the accumulating backward',
    bufs: (r) => [rnd(r, 60, 3), zeros(60), zeros(1), Float32Array.of(1.7), zeros(60), rnd(r, 60)],
    run: (k, [logits, probs, loss, gy, probs2, gl], ix) => {
      const labels = ix(Int32Array.of(3, -1, 0, 9, 9, -1));
      k.softmaxCrossEntropy(logits, labels, 6, 10, probs, 0.25, loss);
      k.crossEntropyGradientInPlace(probs, labels, 6, 10, gy, 4);
      k.softmaxCrossEntropy(logits, labels, 6, 10, probs2, 1, loss);
      k.softmaxCrossEntropyBackward(probs2, labels, 6, 10, 0.5, gl);
    },
  },
  ...[[false, false], [true, false], [false, true], [true, true]].map(([tA, tB]): KernelCase => ({
    name: `gemm ${tA ? 'Aᵀ' : 'A'}·${tB ? 'Bᵀ' : 'B'} 70×90×50, beta 0.5, and batched with a shared A and a bias`,
    bufs: (r) => [rnd(r, 70 * 50), rnd(r, 50 * 90), rnd(r, 70 * 90), rnd(r, 3 * 50 * 90), zeros(3 * 70 * 90), rnd(r, 90)],
    run: (k, [a, b, c, bb, cc, bias]) => {
      k.gemm(tA, tB, 70, 90, 50, 1.5, a, 0, b, 0, 0.5, c, 0, 1);
      k.gemm(tA, tB, 70, 90, 50, 1, a, 0, bb, 50 * 90, 0, cc, 70 * 90, 3, bias);
    },
  })),
  // The register-blocked 128×128 kernel, pinned, over partial tiles: 132×200×36 reads every operand
  // as vec4 (each contiguous extent a multiple of 4), 130×202×37 as scalars; then batches with a
  // shared A, a bias and beta.
  ...[[false, false], [true, false], [false, true], [true, true]].flatMap(([tA, tB]) => [[132, 200, 36], [130, 202, 37]].map(([M, N, K]): KernelCase => ({
    name: `gemm (register-blocked) ${tA ? 'Aᵀ' : 'A'}·${tB ? 'Bᵀ' : 'B'} ${M}×${N}×${K}, beta 0.5, and batched with a shared A and a bias`,
    bufs: (r) => [rnd(r, M * K), rnd(r, K * N), rnd(r, M * N), rnd(r, 2 * K * N), zeros(2 * M * N), rnd(r, N)],
    run: (k, [a, b, c, bb, cc, bias]) => pinGemm(k, 'blocked128', () => {
      k.gemm(tA, tB, M, N, K, 1.5, a, 0, b, 0, 0.5, c, 0, 1);
      k.gemm(tA, tB, M, N, K, 1, a, 0, bb, K * N, 0, cc, M * N, 2, bias);
    }),
  }))),
  // Odd shapes for the implicit GEMM's 64×64 tiles and K steps of 16: stride [2, 1], a 1×1 of 70
  // output channels, a 7×7 stem of stride 2, 17 → 33 channels at stride 2 (K = 153), and 2,304
  // output pixels (the weight gradient split over K); each on both kernels.
  ...[
    conv(2, 3, 9, 8, 4, 3, 3, [2, 1], [1, 0]), conv(1, 2, 6, 6, 3, 3, 3, [1, 1], [1, 1]), conv(2, 5, 6, 7, 70, 1, 1, [1, 1], [0, 0]),
    conv(2, 3, 19, 17, 9, 7, 7, [2, 2], [3, 3]), conv(3, 17, 10, 9, 33, 3, 3, [2, 2], [1, 1]), conv(4, 3, 24, 24, 6, 3, 3, [1, 1], [1, 1]),
  ].flatMap((g, gi) => (['implicitGemm', 'direct'] as const).map((choice): KernelCase => ({
    name: `conv2d + conv2dBackward, ${choice} (geometry ${gi}: ${g.inC}→${g.outC} ${g.kH}×${g.kW} stride ${g.strideH}, bias, setGx ${gi % 2 === 1})`,
    onePath: true,
    bufs: (r) => {
      const nx = g.batch * g.inC * g.inH * g.inW;
      const nw = g.outC * g.inC * g.kH * g.kW;
      return [rnd(r, nx), rnd(r, nw, 0.3), rnd(r, g.outC), zeros(sizeOfConvOut(g)), rnd(r, sizeOfConvOut(g)), rnd(r, nx), rnd(r, nw), rnd(r, g.outC)];
    },
    run: (k, [x, w, b, y, gy, gx, gw, gb]) => {
      const stream = (k as Partial<WebGpuBackend>).stream;
      const sums = stream?.dispatches.get('sumSplits') ?? 0;
      pinConv(k, choice, () => {
        k.conv2d(g, x, w, b, y);
        k.conv2dBackward(g, x, w, gy, gx, gw, gb, gi % 2 === 1);
      });
      if (stream && choice === 'implicitGemm') assert.equal(stream.dispatches.get('sumSplits') ?? 0, sums + (gi === 5 ? 1 : 0), 'the weight gradient split over K');
    },
  }))),
  ...[pool(2, 3, 7, 7, 3, 3, [2, 2], [1, 1]), pool(1, 2, 5, 6, 2, 3, [1, 2], [1, 1])].map((g, gi): KernelCase => ({
    name: `maxPool2d (+relu), avgPool2d and their backward (geometry ${gi})`,
    bufs: (r) => {
      const nx = g.batch * g.channels * g.inH * g.inW;
      const ny = sizeOfPoolOut(g);
      return [distinct(r, nx), zeros(ny), zeros(ny), zeros(ny), rnd(r, ny), rnd(r, nx), zeros(nx), rnd(r, nx), rnd(r, nx)];
    },
    run: (k, [x, ym, yr, ya, gy, gx, gxs, gxr, gxa], ix) => {
      const am = ix(new Int32Array(ym.length));
      const ar = ix(new Int32Array(ym.length));
      k.maxPool2d(g, x, ym, am);
      k.maxPool2dRelu(g, x, yr, ar);
      k.avgPool2d(g, x, ya);
      k.maxPool2dBackward(g, gy, am, gx);
      k.maxPool2dBackwardSet(g, gy, am, gxs);
      k.maxPool2dBackward(g, gy, ar, gxr);
      k.avgPool2dBackward(g, gy, gxa);
    },
  })),
  {
    name: 'batchNorm training (+relu) and eval, their backward (with reluY, setGx) and the eval backward',
    bufs: (r) => {
      const n = 4 * 3 * 10;
      return [rnd(r, n, 2), pos(r, 3, 0.5, 1.5), rnd(r, 3), Float32Array.of(0, 0.1, 0.2), Float32Array.of(1, 1.2, 1.4), zeros(n), zeros(3), zeros(3),
        zeros(n), zeros(3), zeros(3), rnd(r, n), zeros(n), rnd(r, 3), rnd(r, 3), rnd(r, n)];
    },
    run: (k, [x, gamma, beta, rm, rv, y, mean, istd, ye, me, ie, gy, gx, gg, gbeta, gxe]) => {
      k.batchNorm(x, 4, 3, 10, gamma, beta, rm, rv, true, 0.1, 1e-5, y, mean, istd, true);
      k.batchNormBackward(x, 4, 3, 10, gamma, mean, istd, gy, gx, gg, gbeta, true, y);
      k.batchNorm(x, 4, 3, 10, gamma, beta, rm, rv, false, 0.1, 1e-5, ye, me, ie);
      k.batchNormEvalBackward(x, 4, 3, 10, gamma, me, ie, gy, gxe, gg, gbeta);
      k.batchNormBackward(x, 4, 3, 10, gamma, mean, istd, gy, gxe, gg, gbeta);
    },
  },
  {
    name: 'layerNorm and its backward',
    bufs: (r) => [rnd(r, 6 * 100, 2), pos(r, 100, 0.5, 1.5), rnd(r, 100), zeros(600), zeros(6), zeros(6), rnd(r, 600), rnd(r, 600), rnd(r, 100), rnd(r, 100)],
    run: (k, [x, g, b, y, mean, istd, gy, gx, gg, gb]) => {
      k.layerNorm(x, 6, 100, g, b, 1e-5, y, mean, istd);
      k.layerNormBackward(x, 6, 100, g, mean, istd, gy, gx, gg, gb);
    },
  },
  {
    name: 'rmsNorm and its backward (rows longer than a workgroup; a frozen weight skips its gradient)',
    bufs: (r) => [rnd(r, 5 * 150, 2), pos(r, 150, 0.5, 1.5), zeros(750), zeros(5), rnd(r, 750), rnd(r, 750), rnd(r, 150), rnd(r, 750)],
    run: (k, [x, w, y, inv, gy, gx, gw, gxOnly]) => {
      k.rmsNorm(x, 5, 150, w, 1e-6, y, inv);
      k.rmsNormBackward(x, 5, 150, w, inv, gy, gx, gw);
      k.rmsNormBackward(x, 5, 150, w, inv, gy, gxOnly, null);
    },
  },
  {
    name: 'rotary and its backward (accumulating)',
    bufs: (r) => [rnd(r, 3 * 7 * 10), rnd(r, 7 * 5), rnd(r, 7 * 5), zeros(210), rnd(r, 210), rnd(r, 210)],
    run: (k, [x, cos, sin, out, gy, gx]) => {
      k.rotary(x, cos, sin, 3, 7, 10, out);
      k.rotaryBackward(gy, cos, sin, 3, 7, 10, gx);
    },
  },
  {
    name: 'siluMul and its backward (with gate or up frozen)',
    bufs: (r) => [rnd(r, 300, 4), rnd(r, 300), zeros(300), rnd(r, 300), rnd(r, 300), rnd(r, 300), rnd(r, 300)],
    run: (k, [gate, up, out, gy, gGate, gUp, gOnly]) => {
      k.siluMul(gate, up, out);
      k.siluMulBackward(gate, up, gy, gGate, gUp);
      k.siluMulBackward(gate, up, gy, gOnly, null);
      k.siluMulBackward(gate, up, gy, null, gOnly);
    },
  },
  {
    name: 'embedding and its backward with repeated ids',
    bufs: (r) => [rnd(r, 80), zeros(56), rnd(r, 56), rnd(r, 80)],
    run: (k, [table, out, gy, gt], ix) => {
      const ids = ix(Int32Array.of(3, 1, 3, 9, 0, 3, 1));
      k.embedding(table, ids, 8, out);
      k.embeddingBackward(gy, ids, 8, gt);
    },
  },
  ...[
    { causal: true, drop: false, groups: 1 }, { causal: false, drop: true, groups: 1 }, { causal: true, drop: true, groups: 1 },
    { causal: true, drop: true, groups: 3 }, { causal: false, drop: false, groups: 2 },
  ].map(({ causal, drop, groups }): KernelCase => {
    const g: AttentionGeometry = { bh: 3 * groups, groups, tq: causal ? 9 : 5, tk: 9, d: 6, dv: 4, scale: 1 / Math.sqrt(6), causal };
    const kv = g.bh / groups;
    const nq = g.bh * g.tq * g.d, nk = kv * g.tk * g.d, nv = kv * g.tk * g.dv, no = g.bh * g.tq * g.dv, np = g.bh * g.tq * g.tk;
    return {
      name: `attention ${causal ? 'causal' : 'full, tq != tk, dv != d'}${drop ? ' with a dropout mask' : ''}${groups > 1 ? `, ${groups} query heads per kv head` : ''} and its backward`,
      bufs: (r) => [rnd(r, nq), rnd(r, nk), rnd(r, nv), Float32Array.from({ length: np }, () => (r.uniform() < 0.25 ? 0 : 1 / 0.75)),
        zeros(no), zeros(np), rnd(r, no), rnd(r, nq), rnd(r, nk), rnd(r, nv)],
      run: (k, [q, kk, v, mask, out, probs, gy, gq, gk, gv]) => {
        k.attention(g, q, kk, v, drop ? mask : null, out, probs);
        k.attentionBackward(g, q, kk, v, probs, drop ? mask : null, gy, gq, gk, gv);
      },
    };
  }),
  {
    name: 'sgdStep (momentum, nesterov, weight decay; first and later steps) and adamStep (Adam, AdamW)',
    bufs: (r) => [rnd(r, 300), rnd(r, 300), zeros(300), rnd(r, 300), rnd(r, 300), zeros(300), zeros(300), rnd(r, 300)],
    run: (k, [p, g, buf, p2, g2, m, v, p3]) => {
      const sgd = { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, nesterov: true, firstStep: true };
      k.sgdStep(p, g, buf, sgd);
      k.sgdStep(p, g, buf, { ...sgd, firstStep: false });
      k.sgdStep(p3, g, null, { ...sgd, momentum: 0 });
      const adam = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decoupled: false, step: 1 };
      k.adamStep(p2, g2, m, v, adam);
      k.adamStep(p2, g2, m, v, { ...adam, decoupled: true, step: 2 });
    },
  },
];

function tolerances(ref: Float32Array): { rtol: number; atol: number } {
  let m = 1;
  for (const v of ref) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return { rtol: 1e-4, atol: 1e-5 * m };
}

let load: WebGpuLoad;

describe('webgpu kernels against the js reference (float32)', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  });
  after(() => closeWebGpu());

  // A case with row reductions runs on both paths where the device has subgroups (wgsl_reduce.ts):
  // subgroup operations, then the workgroup-memory tree (the path of devices without them).
  for (const c of CASES) {
    it(c.name, async (t) => {
      if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      const stream = load.backend.stream;
      const withSubgroups = stream.subgroups;
      try {
        for (const subgroups of withSubgroups && !c.onePath ? [true, false] : [withSubgroups]) {
          stream.setSubgroups(subgroups);
          const reductionsBefore = stream.rowReductions;
          const ref = c.bufs(new Rng(2024));
          const host = ref.map((b) => Float32Array.from(b));
          const memory = deviceMemory('webgpu');
          const storages: Storage[] = ref.map((b) => memory.fromHost(Float32Array.from(b)));
          c.run(js as K, host, (v) => v);
          c.run(load.backend as unknown as K, storages.map((s) => s.buffer), (v) => memory.fromHost(v).buffer);
          for (let i = 0; i < host.length; i++) {
            const got = (await storages[i].read()) as Float32Array;
            assertClose(got, host[i], { ...tolerances(host[i]), msg: `${c.name} (${subgroups ? 'subgroups' : 'workgroup memory'}): buffer ${i}` });
          }
          if (stream.rowReductions === reductionsBefore) break; // nothing here differs between the paths
        }
      } finally {
        stream.setSubgroups(withSubgroups);
      }
    });
  }

  it('the register-blocked GEMM on views: at an offset of 4 (vec4 reads) and of 1 (scalar reads), and under auto at 64 tiles', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const gpu = load.backend as unknown as K;
    const r = new Rng(7);
    for (const [offset, M, N, Kd, choice] of [[4, 132, 136, 40, 'blocked128'], [1, 132, 136, 40, 'blocked128'], [0, 1024, 1024, 8, 'auto']] as const) {
      const a = rnd(r, M * Kd); const b = rnd(r, Kd * N);
      const want = new Float32Array(M * N);
      (js as K).gemm(false, false, M, N, Kd, 1, a, 0, b, 0, 0, want, 0, 1);
      const memory = deviceMemory('webgpu');
      const place = (v: Float32Array): Storage => {
        const whole = memory.alloc('float32', offset + v.length);
        const view = whole.view(offset, v.length);
        view.write(v);
        return view;
      };
      const [ga, gb, gc] = [place(a), place(b), place(new Float32Array(M * N))];
      const blocked = (): number => load.backend!.stream.dispatches.get('gemmBlocked') ?? 0;
      const before = blocked();
      pinGemm(gpu, choice, () => gpu.gemm(false, false, M, N, Kd, 1, ga.buffer, 0, gb.buffer, 0, 0, gc.buffer, 0, 1));
      assert.equal(blocked(), before + 1, `${choice} ran the register-blocked kernel`);
      assertClose((await gc.read()) as Float32Array, want, { ...tolerances(want), msg: `offset ${offset}, ${M}×${N}×${Kd}, ${choice}` });
    }
  });

  it('uses subgroups where the adapter offers them, unless SMOLCLUSTER_WEBGPU_SUBGROUPS=0', (t) => {
    if (!load.backend || !load.adapter) return t.skip(load.reason ?? 'webgpu unavailable');
    const offered = load.adapter.features.includes('subgroups');
    const off = ['0', 'off'].includes(process.env[OPTIONAL_FEATURES_ENV]?.toLowerCase() ?? '');
    assert.equal(load.backend.stream.subgroups, offered && !off);
    assert.equal(load.backend.description.includes('subgroups'), offered && !off, load.backend.description);
    if (!load.backend.stream.device.features.has('subgroups')) {
      assert.throws(() => load.backend!.stream.setSubgroups(true), /created without the "subgroups" feature/);
    }
  });

  it('dropoutMask draws the same mask as js, bit for bit (Philox on the GPU; lengths off a multiple of 4, keys with the high bit set)', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const gpu = load.backend as unknown as K;
    const memory = deviceMemory('webgpu');
    for (const [n, k0, k1, p] of [[1, 7, 9, 0.5], [1001, 0xffffffff, 0x80000001, 0.1], [65_539, 0x12345678, 0xdeadbeef, 0.9], [4096, 0, 0, 0]] as const) {
      const threshold = dropThreshold(p);
      const want = new Float32Array(n);
      (js as K).dropoutMask(k0, k1, threshold, 1 / (1 - p), want);
      const got = memory.alloc('float32', n);
      gpu.dropoutMask(k0, k1, threshold, 1 / (1 - p), got.buffer);
      assert.deepEqual(await got.read(), want, `n ${n}, key (${k0}, ${k1}), p ${p}`);
      if (p > 0 && n > 1000) assert.ok(want.some((v) => v === 0) && want.some((v) => v !== 0), 'the mask drops some and keeps some');
    }
  });

  it('registers the kernels it has: float32, not bf16 (absent entries, known before a run; a call fails naming them)', (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    assert.ok(supportsPrecision('webgpu', 'fp32'));
    assert.equal(supportsPrecision('webgpu', 'bf16'), false);
    assert.equal(getKernel('gemmBf16' as never, 'webgpu', 'float32'), undefined);
    assert.equal(getKernel('gemm', 'webgpu', 'float32')?.backend, 'webgpu');
    assert.equal('gemmBf16' in load.backend, false, 'no throwing stub on the backend either');
    const x = deviceMemory('webgpu').alloc('float32', 4);
    // A bf16 op on the GPU is refused by name before any kernel runs (a compute node's refusal reason).
    const w = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8], [2, 4], 'float32', 'webgpu');
    assert.throws(() => withComputePrecision('bf16', () => linear(w, w, null)), /device "webgpu" computes in fp32 only/);
    assert.throws(() => kernelsFor(x).toBf16(x.buffer, x.buffer), /no kernel "toBf16" is registered for float32 on device "webgpu" \(registered for webgpu\/float32: \d+ kernels \(webgpu\); "toBf16" runs on: cpu\/float32/);
  });

  it('int32 storages hold indices on the GPU: values round-trip bit for bit, and embedding reads int32 ids there', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const memory = deviceMemory('webgpu');
    const values = Int32Array.of(-1, 0, 7, -(2 ** 31), 2 ** 31 - 1);
    const s = memory.fromHost(values);
    assert.equal(s.dtype, 'int32');
    assert.deepEqual(await s.read(), values);
    s.write([3, -5], 1);
    assert.deepEqual(Array.from(await s.read()), [-1, 3, -5, -(2 ** 31), 2 ** 31 - 1]);
    const table = Tensor.from([0, 1, 10, 11, 20, 21], [3, 2], 'float32', 'webgpu');
    const ids = new Tensor(memory.fromHost(Int32Array.of(2, 0, 1)), [3]);
    assert.deepEqual(Array.from(await embedding(table, ids).read()), [20, 21, 0, 1, 10, 11]);
  });

  it('refuses readSync on a GPU storage with a message that says to await read()', (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    assert.throws(() => deviceMemory('webgpu').alloc('float32', 4).readSync(), /await storage\.read\(\)/);
  });

  it('records a chain of kernels into one submission, submitted when a value is read', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const s = deviceMemory('webgpu').fromHost(Float32Array.of(1, 2, 3));
    const k = load.backend as unknown as K;
    const stream = load.backend.stream;
    await s.read();
    const before = stream.submissions;
    for (let i = 0; i < 50; i++) k.affine(s.buffer, 1, 1, s.buffer);
    assert.deepEqual(Array.from((await s.read()) as Float32Array), [51, 52, 53]);
    assert.equal(stream.submissions - before, 1);
  });
});

describe('SMOLCLUSTER_WEBGPU_GEMM pins the GEMM kernel for a process', () => {
  it('reads auto when unset or empty, each kernel by its name, and refuses anything else by name', () => {
    assert.equal(gemmKernelFromEnv({}), 'auto');
    assert.equal(gemmKernelFromEnv({ [GEMM_KERNEL_ENV]: '' }), 'auto');
    for (const k of ['auto', 'tiled64', 'blocked128'] as const) assert.equal(gemmKernelFromEnv({ [GEMM_KERNEL_ENV]: k }), k);
    assert.throws(() => gemmKernelFromEnv({ [GEMM_KERNEL_ENV]: 'blocked64' }), /SMOLCLUSTER_WEBGPU_GEMM=blocked64: not a GEMM kernel \(auto, tiled64, blocked128\)/);
  });
});
