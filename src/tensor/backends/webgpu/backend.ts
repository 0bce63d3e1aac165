/// <reference types="@webgpu/types" />
import {
  type AdamHyper, type AttentionGeometry, type BackendInfo, type BinaryOp, type Conv2dGeometry, type Kernels, type Pool2dGeometry,
  type SgdHyper, type UnaryOp, kvSliceLength,
} from '../../backend.js';
import type { DeviceBuffer } from '../../storage.js';
import type { BF16_CASTS } from '../../kernel_names.js';
import { GpuStream, MAX_DISPATCH, groupsFor, type GpuBuf, type KernelSpec } from './stream.js';
import { WEBGPU, gpuMemory } from './storage.js';
import { GpuCachingAllocator } from './caching_allocator.js';
import * as E from './wgsl_elementwise.js';
import * as N from './wgsl_nn.js';
import { BLOCKED_TILE, gemmBlocked } from './wgsl_gemm_blocked.js';
import * as C from './wgsl_conv.js';
import * as L from './wgsl_llama.js';
import type { OpenedGpu } from './loader.js';

type B = GpuBuf;

/** The kernels this backend has written: the whole contract but the bf16 ones. */
export type GpuKernels<Buf> = Omit<Kernels<Buf>, (typeof BF16_CASTS)[number]>;
/** The webgpu backend as registered (dispatch.ts registers the kernels it has, one entry each). */
export type GpuBackend = BackendInfo & GpuKernels<DeviceBuffer>;
type Param = number | readonly number[];

/** Workgroups of ELEM kernels (256 invocations) over n elements. */
const elem = (n: number): [number, number] => groupsFor(n, 256);
/** One workgroup per row. */
const rows = (n: number): [number, number] => groupsFor(n, 1);

const MAX_DIMS = 8;

/** Which GEMM kernel runs: chosen per call by size (`auto`), or one of them (tests, bench:gpu). */
export type GemmKernelChoice = 'auto' | 'tiled64' | 'blocked128';

/**
 * Which convolution kernels run: the implicit GEMMs (wgsl_conv.ts), or the direct ones (one
 * invocation per output, wgsl_nn.ts), which `auto` keeps for passes too thin for a GEMM tile and
 * grids it cannot cover (see implicitGemm below); tests and bench:gpu pin one.
 */
export type ConvKernelChoice = 'auto' | 'direct' | 'implicitGemm';

/** Pins the GEMM kernel for a whole process (bench:gpu-models compares them on one GPU). */
export const GEMM_KERNEL_ENV = 'SMOLCLUSTER_WEBGPU_GEMM';

/** The GEMM kernel SMOLCLUSTER_WEBGPU_GEMM names (unset: `auto`); any other value is refused by name. */
export function gemmKernelFromEnv(env: Record<string, string | undefined> = typeof process === 'undefined' ? {} : process.env): GemmKernelChoice {
  const v = env[GEMM_KERNEL_ENV];
  if (v === undefined || v === '') return 'auto';
  if (v === 'auto' || v === 'tiled64' || v === 'blocked128') return v;
  throw new Error(`${GEMM_KERNEL_ENV}=${v}: not a GEMM kernel (auto, tiled64, blocked128)`);
}

/**
 * `auto` takes the register-blocked 128×128 kernel once it has this many tiles to spread over the
 * GPU's cores (a 1024×1024 product has 64), else the 64×64 kernel, which gives a small product 4×
 * the workgroups. Not tuned on a GPU yet (none was at hand): a first guess.
 */
const BLOCKED_MIN_TILES = 64;

/** Whether the blocked kernel may read this operand as vec4: its view, batch stride and contiguous extent on multiples of 4. */
const vec4Ready = (buf: B, stride: number, contiguous: number): boolean => buf.offset % 4 === 0 && stride % 4 === 0 && contiguous % 4 === 0;

/**
 * The WebGPU backend: the Kernels contract over GPU buffers, every kernel a WGSL compute shader
 * recorded into the device's stream (stream.ts). Dropout masks are drawn here, by Philox-4x32-10
 * (counter-based: the same bits as js and native). What runs on the host: the random initialisers
 * (drawn from the Rng's xoshiro128** stream on the host, bit for bit like js, and uploaded). Index
 * buffers (argmax, labels, token ids) are int32 storages on this device. Attention is composed of
 * this backend's GEMM and softmax kernels (the probabilities are materialised, as on the cpu).
 */
export function webgpuBackend(gpu: OpenedGpu): GpuBackend & { stream: GpuStream; allocator: GpuCachingAllocator; adapterName: string; gemmKernel: GemmKernelChoice; convKernel: ConvKernelChoice } {
  const stream = new GpuStream(gpu.device);
  const allocator = new GpuCachingAllocator(gpu.device, (b) => stream.release(b));
  const memory = gpuMemory(stream, allocator);
  const run = (spec: KernelSpec, bufs: B[], params: Param[], groups: readonly [number, number?, number?]): void =>
    stream.dispatch(spec, bufs, params, groups);
  /**
   * Elements per piece of a kernel split to fit the binding limit (stream.ts): the limit less one
   * alignment step (a piece's binding starts up to that far before it), in whole workgroups.
   */
  const pieceElements = (): number => Math.max(256, Math.floor((stream.maxBindingBytes - stream.bindingAlignment) / 4 / 256) * 256);
  /**
   * A kernel whose invocation i touches element i of each view (params: n, then `rest`), run in
   * pieces when its n elements would not fit one binding (an optimizer step, a scaling or a fill
   * over a whole arena). Views of another length (scaledByGy's scalar) are passed whole.
   */
  const perElement = (spec: KernelSpec, bufs: B[], n: number, rest: Param[]): void => {
    const piece = pieceElements();
    if (n <= piece) {
      run(spec, bufs, [n, ...rest], elem(n));
      return;
    }
    for (let s = 0; s < n; s += piece) {
      const m = Math.min(piece, n - s);
      run(spec, bufs.map((b) => (b.length === n ? kernels.subBuffer(b, s, m) : b)), [m, ...rest], elem(m));
    }
  };
  /** A zeroed scratch buffer. */
  const temp = (n: number): B => memory.allocBuf(n);
  /** Frees scratch buffers once the kernels reading them are recorded (the stream keeps their order). */
  const done = (...bufs: B[]): void => bufs.forEach((b) => memory.freeBuf(b));

  /** Host values written into a GPU buffer, in stream order. */
  const writeHost = (dst: B, values: Float32Array): void => {
    const staging = stream.upload(values, GPUBufferUsage.COPY_SRC);
    stream.copy(staging, 0, dst.gpu, dst.offset * 4, values.byteLength);
  };
  const checkDims = (what: string, nd: number): void => {
    if (nd > MAX_DIMS) throw new Error(`webgpu ${what}: ${nd} dimensions (at most ${MAX_DIMS})`);
  };

  const gemm = (
    transA: boolean, transB: boolean, M: number, Nn: number, K: number, alpha: number,
    A: B, strideA: number, Bm: B, strideB: number, beta: number, C: B, strideC: number, batch: number, bias?: B | null,
  ): void => {
    const bufs = [A, Bm, C, bias ?? C];
    const params = [M, Nn, K, transA ? 1 : 0, transB ? 1 : 0, alpha, beta, strideA, strideB, strideC, bias ? 1 : 0];
    const blockedTiles = Math.ceil(Nn / BLOCKED_TILE) * Math.ceil(M / BLOCKED_TILE) * batch;
    const choice = backendObject.gemmKernel;
    const blocked = choice === 'blocked128' || (choice === 'auto' && blockedTiles >= BLOCKED_MIN_TILES);
    // The blocked kernel binds whole vec4s: every buffer this package allocates is (storage.ts).
    if (blocked && bufs.every((b) => b.gpu.size % 16 === 0)) {
      const vecA = vec4Ready(A, strideA, transA ? M : K);
      const vecB = vec4Ready(Bm, strideB, transB ? K : Nn);
      run(gemmBlocked, bufs, [...params, vecA ? 1 : 0, vecB ? 1 : 0], [Math.ceil(Nn / BLOCKED_TILE), Math.ceil(M / BLOCKED_TILE), batch]);
      return;
    }
    run(N.gemm, bufs, params, [Math.ceil(Nn / N.GEMM_TILE), Math.ceil(M / N.GEMM_TILE), batch]);
  };
  /**
   * Whether a convolution pass runs as an implicit GEMM of M×N×K: pinned, or under `auto` when each
   * of M, N, K fills at least a 16-wide slice of a tile and the grid fits (≤ 65,535 rows of 64);
   * else the direct kernel. On SwiftShader the MNIST CNN's first layer (one input channel) ran
   * 2.7× (forward) and 6.4× (backward) faster direct (docs/GPU.md); not tuned on a GPU.
   */
  const implicitGemm = (M: number, N: number, K: number): boolean => {
    const choice = backendObject.convKernel;
    if (choice !== 'auto') return choice === 'implicitGemm';
    return Math.min(M, N, K) >= 16 && Math.ceil(M / C.CONV_TILE) <= MAX_DISPATCH;
  };
  /** gw += Σ over the batch's output pixels, split over K when that fills the GPU better (then summed by sumSplits). */
  const convWeightGradient = (g: Conv2dGeometry, x: B, gy: B, gw: B): void => {
    const M = g.inC * g.kH * g.kW;
    const { splits, chunk } = C.weightSplits(M, g.outC, g.batch * g.outH * g.outW);
    const qn = C.nTileOf(g.outC);
    const groups = [Math.ceil(g.outC / (16 * qn)), Math.ceil(M / C.CONV_TILE), splits] as const;
    if (splits === 1) {
      run(C.convBackwardWeight(qn), [x, gy, gw], [1, chunk, convG(g)], groups);
      return;
    }
    const parts = temp(splits * M * g.outC);
    run(C.convBackwardWeight(qn), [x, gy, parts], [splits, chunk, convG(g)], groups);
    run(C.sumSplits, [parts, gw], [M * g.outC, splits], elem(M * g.outC));
    done(parts);
  };
  /**
   * rotary (sign 1, dst written) or its backward (sign −1, dst accumulated), in pieces of whole
   * [t, d] slices when src and dst would not fit one binding (cos and sin are bound whole).
   */
  const rotate = (src: B, cos: B, sin: B, slices: number, t: number, d: number, dst: B, backwardPass: boolean): void => {
    const per = Math.max(1, Math.floor(pieceElements() / (t * d)));
    for (let s0 = 0; s0 < slices; s0 += per) {
      const m = Math.min(per, slices - s0);
      const view = (b: B): B => (m === slices ? b : kernels.subBuffer(b, s0 * t * d, m * t * d));
      const pairs = (m * t * d) / 2;
      run(L.rotary, [view(src), cos, sin, view(dst)], [pairs, t, d / 2, backwardPass ? -1 : 1, backwardPass ? 1 : 0], elem(pairs));
    }
  };
  const softmaxRows = (x: B, nRows: number, cols: number, out: B, log: boolean, causal = false, tq = 1): void =>
    run(E.softmax, [x, out], [nRows, cols, log ? 1 : 0, causal ? 1 : 0, tq], rows(nRows));
  const mul = (a: B, b: B, out: B, n: number): void => run(E.binary, [a, b, out], [n, 1, 2, [n], [1], [1]], elem(n));
  const convG = (g: Conv2dGeometry): number[] =>
    [g.batch, g.inC, g.inH, g.inW, g.outC, g.kH, g.kW, g.strideH, g.strideW, g.padH, g.padW, g.outH, g.outW];
  const poolG = (g: Pool2dGeometry): number[] =>
    [g.batch, g.channels, g.inH, g.inW, g.kH, g.kW, g.strideH, g.strideW, g.padH, g.padW, g.outH, g.outW];
  const drawn = (n: number, draw: () => number): Float32Array => {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = draw();
    return v;
  };

  // WGSL has no bf16, so the bf16 kernels are absent (the registry says so before a run: --precision
  // bf16 is the cpu's, docs/PRECISION.md); f16 on GPUs is not built yet.
  const kernels: GpuKernels<B> = {
    gemm,
    subBuffer: (x, offset, length) => ({ gpu: x.gpu, offset: x.offset + offset, length, lease: x.lease }),
    unary: (op: UnaryOp, x, out) => perElement(E.unary, [x, out], out.length, [E.UNARY_CODES.indexOf(op)]),
    unaryBackward: (op: UnaryOp, x, y, gy, gx) => perElement(E.unaryBackward, [x, y, gy, gx], gx.length, [E.UNARY_CODES.indexOf(op)]),
    binary(op: BinaryOp, a, aStrides, b, bStrides, out, shape) {
      checkDims('binary', shape.length);
      run(E.binary, [a, b, out], [out.length, shape.length, E.BINARY_CODES.indexOf(op), shape, aStrides, bStrides], elem(out.length));
    },
    affine: (x, scale, shift, out) => perElement(E.affine, [x, out], out.length, [scale, shift]),
    powScalar: (x, p, out) => perElement(E.powScalar, [x, out], out.length, [p]),
    axpy: (alpha, x, y) => perElement(E.axpy, [x, y], y.length, [alpha]),
    addInto: (y, x) => perElement(E.axpy, [x, y], y.length, [1]),
    fill: (x, value) => perElement(E.fill, [x], x.length, [value]),
    dropoutMask: (k0, k1, threshold, keep, out) =>
      run(E.dropoutMask, [out], [out.length, k0, k1, threshold, keep], elem(Math.ceil(out.length / 4))),
    sumSquares(x, divisor, out) {
      // Per piece that fits one binding (one piece below the limit), partial sums of its slices; then their total.
      const piece = pieceElements();
      const pieces = Math.max(1, Math.ceil(x.length / piece));
      const span = pieces === 1 ? x.length : piece;
      const parts = Math.max(1, Math.min(1024, Math.ceil(span / 4096)));
      const partial = temp(pieces * parts);
      for (let p = 0; p < pieces; p++) {
        const m = Math.min(span, x.length - p * span);
        run(E.sumSquaresPartial, [pieces === 1 ? x : kernels.subBuffer(x, p * span, m), kernels.subBuffer(partial, p * parts, parts)], [m, parts * 64], [parts]);
      }
      run(E.sumFinal, [partial, out], [pieces * parts, divisor], [1]);
      done(partial);
    },
    mseLossBackward(diff, gy, n, gPred, gTarget) {
      if (gPred) perElement(E.scaledByGy, [diff, gy, gPred], gPred.length, [2 / n]);
      if (gTarget) perElement(E.scaledByGy, [diff, gy, gTarget], gTarget.length, [-2 / n]);
    },
    fillNormal: (x, rng, std) => writeHost(x, drawn(x.length, () => std * rng.normal())),
    fillUniform: (x, rng, low, high) => writeHost(x, drawn(x.length, () => low + (high - low) * rng.uniform())),
    powBackward(a, b, y, gy, ga, gb) {
      if (ga) perElement(E.powBackwardA, [a, b, gy, ga], ga.length, []);
      if (gb) perElement(E.powBackwardB, [a, y, gy, gb], gb.length, []);
    },
    stridedCopy(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape, accumulate) {
      checkDims('stridedCopy', shape.length);
      const n = shape.reduce((p, s) => p * s, 1);
      run(E.stridedCopy, [src, dst], [n, shape.length, accumulate ? 1 : 0, srcOffset, dstOffset, shape, srcStrides, dstStrides], elem(n));
    },
    reduceSum: (x, outer, n, inner, out) => run(E.reduceSum, [x, out], [outer * inner, n, inner], rows(outer * inner)),
    reduceMax: (x, outer, n, inner, out, argmax) =>
      run(E.reduceMax, [x, out, argmax], [outer * inner, n, inner], rows(outer * inner)),
    reduceMaxBackward: (gy, argmax, outer, n, inner, gx) =>
      run(E.reduceMaxBackward, [gy, argmax, gx], [outer * inner, n, inner], elem(outer * inner)),
    softmax: (x, r, c, out) => softmaxRows(x, r, c, out, false),
    softmaxCausal: (x, slices, r, c, out) => softmaxRows(x, slices * r, c, out, false, true, r),
    softmaxBackward: (y, gy, r, c, gx) => run(E.softmaxBackward, [y, gy, gx], [r, c, 0], rows(r)),
    logSoftmax: (x, r, c, out) => softmaxRows(x, r, c, out, true),
    logSoftmaxBackward: (y, gy, r, c, gx) => run(E.softmaxBackward, [y, gy, gx], [r, c, 1], rows(r)),
    softmaxCrossEntropy(logits, labels, r, c, probs, probScale, loss, smoothing = 0) {
      const rowLoss = temp(r);
      run(E.crossEntropyRows, [logits, labels, probs, rowLoss], [r, c, probScale, smoothing], rows(r));
      run(E.crossEntropyMean, [rowLoss, labels, loss], [r], [1]);
      done(rowLoss);
    },
    crossEntropyGradientInPlace: (p, labels, r, c, gy, counted, smoothing = 0) =>
      run(E.crossEntropyGradient, [p, labels, gy], [r * c, c, counted, smoothing], elem(r * c)),
    softmaxCrossEntropyBackward: (p, labels, r, c, scale, gx) =>
      run(E.crossEntropyBackward, [p, labels, gx], [r * c, c, scale], elem(r * c)),
    conv2d(g, x, w, bias, y) {
      const M = g.batch * g.outH * g.outW;
      if (implicitGemm(M, g.outC, g.inC * g.kH * g.kW)) {
        const qn = C.nTileOf(g.outC);
        run(C.convForward(qn), [x, w, bias ?? w, y], [bias ? 1 : 0, convG(g)], [Math.ceil(g.outC / (16 * qn)), Math.ceil(M / C.CONV_TILE)]);
        return;
      }
      const n = g.batch * g.outC * g.outH * g.outW;
      run(N.conv2d, [x, w, bias ?? w, y], [n, bias ? 1 : 0, convG(g)], elem(n));
    },
    conv2dBackward(g, x, w, gy, gx, gw, gBias, setGx) {
      const pixelsIn = g.batch * g.inH * g.inW;
      if (gx && implicitGemm(pixelsIn, g.inC, g.outC * g.kH * g.kW)) {
        const qn = C.nTileOf(g.inC);
        run(C.convBackwardData(qn), [gy, w, gx], [setGx ? 1 : 0, convG(g)], [Math.ceil(g.inC / (16 * qn)), Math.ceil(pixelsIn / C.CONV_TILE)]);
      } else if (gx) {
        const n = g.batch * g.inC * g.inH * g.inW;
        run(N.conv2dBackwardInput, [gy, w, gx], [n, setGx ? 1 : 0, convG(g)], elem(n));
      }
      const nw = g.outC * g.inC * g.kH * g.kW;
      if (implicitGemm(g.inC * g.kH * g.kW, g.outC, g.batch * g.outH * g.outW)) convWeightGradient(g, x, gy, gw);
      else run(N.conv2dBackwardWeight, [x, gy, gw], [nw, convG(g)], rows(nw));
      if (gBias) run(N.channelSum, [gy, gBias], [g.batch, g.outC, g.outH * g.outW], rows(g.outC));
    },
    maxPool2d: (g, x, y, argmax) => run(N.pool2d, [x, y, argmax], [y.length, 0, poolG(g)], elem(y.length)),
    maxPool2dRelu: (g, x, y, argmax) => run(N.pool2d, [x, y, argmax], [y.length, 1, poolG(g)], elem(y.length)),
    maxPool2dBackward: (g, gy, argmax, gx) => run(N.pool2dBackward, [gy, argmax, gx], [gx.length, 0, 0, poolG(g)], elem(gx.length)),
    maxPool2dBackwardSet: (g, gy, argmax, gx) => run(N.pool2dBackward, [gy, argmax, gx], [gx.length, 0, 1, poolG(g)], elem(gx.length)),
    avgPool2d: (g, x, y) => run(N.pool2d, [x, y, y], [y.length, 2, poolG(g)], elem(y.length)),
    avgPool2dBackward: (g, gy, gx) => run(N.pool2dBackward, [gy, gy, gx], [gx.length, 2, 0, poolG(g)], elem(gx.length)),
    batchNorm(x, outer, C, inner, gamma, beta, runningMean, runningVar, training, momentum, eps, y, mean, invStd, relu) {
      if (training) run(N.batchNormStats, [x, mean, invStd, runningMean, runningVar], [outer, C, inner, momentum, eps], rows(C));
      else run(N.batchNormEvalStats, [runningMean, runningVar, mean, invStd], [C, eps], elem(C));
      run(N.batchNormApply, [x, gamma, beta, mean, invStd, y], [y.length, C, inner, relu ? 1 : 0], elem(y.length));
    },
    batchNormBackward(x, outer, C, inner, gamma, mean, invStd, gy, gx, gGamma, gBeta, setGx, reluY) {
      const sums = temp(2 * C);
      const masked = reluY ? 1 : 0;
      run(N.batchNormGradSums, [x, gy, mean, invStd, reluY ?? gy, sums, gGamma, gBeta], [outer, C, inner, masked], rows(C));
      run(N.batchNormGradInput, [x, gy, gamma, mean, invStd, reluY ?? gy, sums, gx], [x.length, C, inner, masked, setGx ? 1 : 0, outer * inner], elem(x.length));
      done(sums);
    },
    batchNormEvalBackward(x, outer, C, inner, gamma, mean, invStd, gy, gx, gGamma, gBeta) {
      run(N.batchNormEvalGradSums, [x, gy, mean, invStd, gGamma, gBeta], [outer, C, inner], rows(C));
      if (gx) run(N.batchNormEvalGradInput, [gy, gamma, invStd, gx], [gx.length, C, inner], elem(gx.length));
    },
    layerNorm: (x, r, c, gamma, beta, eps, y, mean, invStd) => run(N.layerNorm, [x, gamma, beta, y, mean, invStd], [r, c, eps], rows(r)),
    layerNormBackward(x, r, c, gamma, mean, invStd, gy, gx, gGamma, gBeta) {
      run(N.layerNormGradInput, [x, gamma, mean, invStd, gy, gx], [r, c], rows(r));
      run(N.layerNormGradParams, [x, mean, invStd, gy, gGamma, gBeta], [r, c], rows(c));
    },
    rmsNorm: (x, r, c, weight, eps, y, invRms) => run(L.rmsNorm, [x, weight, y, invRms], [r, c, eps], rows(r)),
    rmsNormBackward(x, r, c, weight, invRms, gy, gx, gWeight) {
      if (gx) run(L.rmsNormGradInput, [x, weight, invRms, gy, gx], [r, c], rows(r));
      if (gWeight) run(L.rmsNormGradWeight, [x, invRms, gy, gWeight], [r, c], rows(c));
    },
    rotary: (x, cos, sin, slices, t, d, out) => rotate(x, cos, sin, slices, t, d, out, false),
    rotaryBackward: (gy, cos, sin, slices, t, d, gx) => rotate(gy, cos, sin, slices, t, d, gx, true),
    siluMul: (gate, up, out) => perElement(L.siluMul, [gate, up, out], out.length, []),
    siluMulBackward: (gate, up, gy, gGate, gUp) =>
      perElement(L.siluMulBackward, [gate, up, gy, gGate ?? gy, gUp ?? gy], gy.length, [gGate ? 1 : 0, gUp ? 1 : 0]),
    embedding: (table, ids, dim, out) => run(N.embedding, [table, ids, out], [ids.length * dim, dim], elem(ids.length * dim)),
    embeddingBackward: (gy, ids, dim, gTable) => run(N.embeddingBackward, [gy, ids, gTable], [ids.length, dim], elem(dim)),
    // Each product runs once per k/v slice, its `groups` (consecutive) query slices as one block of
    // `qRows` query rows, so gk and gv sum over a group's query heads inside the product.
    attention(g: AttentionGeometry, q, k, v, dropMask, out, probs) {
      const { bh, tq, tk, d, dv } = g;
      const kv = bh / g.groups, qRows = g.groups * tq, cap = kvSliceLength(g);
      gemm(false, true, qRows, tk, d, g.scale, q, qRows * d, k, cap * d, 0, probs, qRows * tk, kv);
      softmaxRows(probs, bh * tq, tk, probs, false, g.causal, tq);
      let weights = probs;
      if (dropMask) {
        weights = temp(bh * tq * tk);
        mul(probs, dropMask, weights, bh * tq * tk);
      }
      gemm(false, false, qRows, dv, tk, 1, weights, qRows * tk, v, cap * dv, 0, out, qRows * dv, kv);
      if (weights !== probs) done(weights);
    },
    attentionBackward(g: AttentionGeometry, q, k, v, probs, dropMask, gy, gq, gk, gv) {
      const { bh, tq, tk, d, dv } = g;
      const kv = bh / g.groups, qRows = g.groups * tq, cap = kvSliceLength(g);
      const n = bh * tq * tk;
      let weights = probs;
      if (dropMask) {
        weights = temp(n);
        mul(probs, dropMask, weights, n);
      }
      if (gv) gemm(true, false, tk, dv, qRows, 1, weights, qRows * tk, gy, qRows * dv, 1, gv, cap * dv, kv);
      if (weights !== probs) done(weights);
      if (!gq && !gk) return;
      const dP = temp(n);
      gemm(false, true, qRows, tk, dv, 1, gy, qRows * dv, v, cap * dv, 0, dP, qRows * tk, kv);
      if (dropMask) mul(dP, dropMask, dP, n);
      const dS = temp(n);
      run(E.softmaxBackward, [probs, dP, dS], [bh * tq, tk, 0], rows(bh * tq));
      if (gq) gemm(false, false, qRows, d, tk, g.scale, dS, qRows * tk, k, cap * d, 1, gq, qRows * d, kv);
      if (gk) gemm(true, false, tk, d, qRows, g.scale, dS, qRows * tk, q, qRows * d, 1, gk, cap * d, kv);
      done(dP, dS);
    },
    sgdStep(param, grad, momentumBuf, h: SgdHyper) {
      perElement(N.sgd, [param, grad, momentumBuf ?? grad], param.length,
        [h.lr, h.momentum, h.dampening, h.weightDecay, h.nesterov ? 1 : 0, h.firstStep ? 1 : 0, momentumBuf ? 1 : 0]);
    },
    adamStep(param, grad, m, v, h: AdamHyper) {
      const bc1 = 1 - Math.pow(h.beta1, h.step);
      const bc2 = 1 - Math.pow(h.beta2, h.step);
      perElement(N.adam, [param, grad, m, v], param.length, [h.beta1, h.beta2, h.eps, h.lr / bc1, Math.sqrt(bc2),
        h.decoupled ? 1 - h.lr * h.weightDecay : 1, h.decoupled ? 0 : h.weightDecay]);
    },
  };

  const a = gpu.summary;
  const adapterName = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unknown adapter';
  const backendObject = Object.assign(kernels as unknown as GpuKernels<DeviceBuffer>, {
    name: 'webgpu',
    device: WEBGPU,
    dtypes: ['float32'] as const,
    description: `WGSL compute shaders on ${adapterName} (Dawn${stream.subgroups ? ', subgroups' : ''})`,
    multithreaded: false,
    setThreads: (): void => {},
    getThreads: (): number => 1,
    stream,
    /** The caching allocator of this device's storages (statistics, cap, emptyCache). */
    allocator,
    adapterName,
    adapter: { name: adapterName, software: a.software },
    memory,
    /** Which GEMM kernel runs (GemmKernelChoice); `auto` unless GEMM_KERNEL_ENV, a test or bench:gpu pins one. */
    gemmKernel: gemmKernelFromEnv(),
    /** Which convolution kernels run (ConvKernelChoice); `auto` unless a test or bench:gpu pins one. */
    convKernel: 'auto' as ConvKernelChoice,
  });
  return backendObject;
}
