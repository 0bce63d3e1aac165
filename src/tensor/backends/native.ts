/**
 * The native backend: the N-API addon in src/native/ (oneDNN / BLAS kernels), float32 only.
 *
 * The addon is the first of these under the package root that loads: the prebuilt one shipped in
 * the npm package (prebuilds/<platform>-<arch>/smolcluster.node, with oneDNN beside it; built by
 * scripts/prebuild.mjs), then the one built from source by the install script
 * (build/Release/smolcluster.node). SMOLCLUSTER_NATIVE_ADDON=/path/to/file.node loads only that one
 * (tests, benchmarks). This file loads it and adapts the Backend contract to its flat argument
 * lists: shapes, strides and geometry are packed into a reused Float64Array, op names become small
 * integer codes, hyper-parameter objects are spread into numbers. Buffers pass through untouched
 * (the addon refuses a Float64Array with a TypeError).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  AdamHyper, AttentionGeometry, Backend, BinaryOp, Buf, Conv2dGeometry, HostBackend, LlamaDecodeBlock, LlamaDecodePlan, LlamaDecodeStep, LlamaDecodeWeights, LlamaStackShape, PackedWeight, Pool2dGeometry, SgdHyper, UnaryOp,
} from '../backend.js';
import { CPU } from '../storage.js';
import { cpuBackend } from './cpu/storage.js';
import { jsHostBackend } from './js.js';
import { smoothingSum, subtractLabels } from './js/softmax.js';
import { staleAddonReason } from './native_stamp.js';
import { hasLlamaDecode, hasLlamaStack, llamaDecodeLayer, llamaDecodePlan, llamaDecodeStack } from './native_llama_decode.js';
import { hasQuantKernels, nativeQuantKernels, nativeRepackQuant } from './native_quant.js';
import { QUANT_TYPES, type QuantType } from '../quant/formats.js';

/** The addon's raw exports (src/native/*.cc); argument order mirrors the Backend methods. */
/**
 * The addon's CPU feature table (src/native/cpu_features.h): what the kernels may use in this
 * process, after the SMOLCLUSTER_CPU cap, and what the hardware has.
 */
export interface CpuTable {
  arch: 'x64' | 'arm64';
  /** The level the kernels run at ("amx", "avx2", "neon-dotprod", "generic" …). */
  level: string;
  /** The level the hardware reaches (above `level` when capped). */
  detectedLevel: string;
  /** This architecture's levels, lowest first: the values SMOLCLUSTER_CPU takes (and "native"). */
  levels: string[];
  /** Feature → usable in this process (x64: avx2 avx512 avx512vnni avx512bf16 amxBf16 amxInt8; arm64: neon dotprod i8mm bf16). */
  features: Record<string, boolean>;
  /** The same features as the hardware and OS offer them. */
  detected: Record<string, boolean>;
}

export interface Addon {
  description: string;
  libraries: { dnnl: boolean; cblas: boolean; openmp: boolean };
  cpu: CpuTable;
  setThreads(n: number): void;
  getThreads(): number;
  setGemmEngine(name: string): void;
  getGemmEngine(): string;
  lastGemmEngine(): string;
  setConvEngine(name: string): void;
  setPoolEngine(name: string): void;
  setFlushDenormals(on: boolean): void;
  getFlushDenormals(): boolean;
  keepLargeAllocations(): boolean;
  adviseHugePages(x: Uint16Array): number;
  dropoutMask(k0: number, k1: number, threshold: number, keep: number, out: Buf): void;
  gemm(ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number, A: Buf, sA: number,
    B: Buf, sB: number, beta: number, C: Buf, sC: number, batch: number, bias: Buf | null): void;
  attentionBf16(sizes: Float64Array, scale: number, causal: boolean, q: Buf, k: Buf, v: Buf, dropMask: Buf | null, out: Buf, probs: Buf): void;
  attentionBf16Backward(sizes: Float64Array, scale: number, causal: boolean, q: Buf, k: Buf, v: Buf, probs: Buf, dropMask: Buf | null, gy: Buf,
    gq: Buf | null, gk: Buf | null, gv: Buf | null): void;
  attentionDecodeF32(sizes: Float64Array, scale: number, causal: boolean, q: Buf, kNew: Buf, vNew: Buf, k: Buf, v: Buf, out: Buf): void;
  /** src/native/row_argmax.cc (absent from an addon built before it). */
  rowArgmax?(x: Buf): number;
  attentionDecodeBf16(sizes: Float64Array, scale: number, causal: boolean, q: Buf, kNew: Buf, vNew: Buf, k: Buf, v: Buf, out: Buf): void;
  unary(op: number, x: Buf, out: Buf): void;
  unaryBackward(op: number, x: Buf, y: Buf, gy: Buf, gx: Buf): void;
  binary(op: number, a: Buf, b: Buf, out: Buf, dims: Float64Array): void;
  affine(x: Buf, scale: number, shift: number, out: Buf): void;
  powScalar(x: Buf, p: number, out: Buf): void;
  axpy(alpha: number, x: Buf, y: Buf): void;
  addInto(y: Buf, x: Buf): void;
  fill(x: Buf, value: number): void;
  sumSquares(x: Buf): number;
  stridedCopy(src: Buf, srcOffset: number, dst: Buf, dstOffset: number, dims: Float64Array, acc: boolean): void;
  reduceSum(x: Buf, outer: number, n: number, inner: number, out: Buf): void;
  reduceMax(x: Buf, outer: number, n: number, inner: number, out: Buf, argmax: Int32Array): void;
  softmax(x: Buf, rows: number, cols: number, out: Buf): void;
  softmaxBackward(y: Buf, gy: Buf, rows: number, cols: number, gx: Buf): void;
  logSoftmax(x: Buf, rows: number, cols: number, out: Buf): void;
  logSoftmaxBackward(y: Buf, gy: Buf, rows: number, cols: number, gx: Buf): void;
  softmaxCrossEntropy(logits: Buf, labels: Int32Array, rows: number, cols: number, probs: Buf, probScale: number): number;
  softmaxCrossEntropyBackward(probs: Buf, labels: Int32Array, rows: number, cols: number, scale: number, g: Buf): void;
  conv2d(geom: Float64Array, x: Buf, w: Buf, bias: Buf | null, y: Buf): void;
  conv2dBackward(geom: Float64Array, x: Buf, w: Buf, gy: Buf, gx: Buf | null, gw: Buf, gb: Buf | null, setGx?: boolean): void;
  maxPool2d(geom: Float64Array, x: Buf, y: Buf, argmax: Int32Array): void;
  maxPool2dRelu(geom: Float64Array, x: Buf, y: Buf, argmax: Int32Array): void;
  maxPool2dBackward(geom: Float64Array, gy: Buf, argmax: Int32Array, gx: Buf): void;
  maxPool2dBackwardSet(geom: Float64Array, gy: Buf, argmax: Int32Array, gx: Buf): void;
  avgPool2d(geom: Float64Array, x: Buf, y: Buf): void;
  avgPool2dBackward(geom: Float64Array, gy: Buf, gx: Buf): void;
  batchNorm(x: Buf, outer: number, C: number, inner: number, gamma: Buf, beta: Buf, rm: Buf, rv: Buf,
    training: boolean, momentum: number, eps: number, y: Buf, mean: Buf, invStd: Buf, relu?: boolean): void;
  batchNormBackward(x: Buf, outer: number, C: number, inner: number, gamma: Buf, mean: Buf, invStd: Buf,
    gy: Buf, gx: Buf, gGamma: Buf, gBeta: Buf, setGx?: boolean, reluY?: Buf | null, reluYBf16?: Buf | null): void;
  layerNorm(x: Buf, rows: number, cols: number, gamma: Buf, beta: Buf, eps: number, y: Buf, mean: Buf, invStd: Buf): void;
  layerNormBackward(x: Buf, rows: number, cols: number, gamma: Buf, mean: Buf, invStd: Buf, gy: Buf,
    gx: Buf, gGamma: Buf, gBeta: Buf): void;
  rmsNorm(x: Buf, rows: number, cols: number, weight: Buf, eps: number, y: Buf, invRms: Buf): void;
  rmsNormBackward(x: Buf, rows: number, cols: number, weight: Buf, invRms: Buf, gy: Buf, gx: Buf | null, gWeight: Buf | null): void;
  rotary(x: Buf, cos: Buf, sin: Buf, slices: number, t: number, d: number, out: Buf): void;
  rotaryBackward(gy: Buf, cos: Buf, sin: Buf, slices: number, t: number, d: number, gx: Buf): void;
  siluMul(gate: Buf, up: Buf, out: Buf): void;
  siluMulBackward(gate: Buf, up: Buf, gy: Buf, gGate: Buf | null, gUp: Buf | null): void;
  embedding(table: Buf, ids: Int32Array, dim: number, out: Buf): void;
  embeddingBackward(gy: Buf, ids: Int32Array, dim: number, gTable: Buf): void;
  attention(sizes: Float64Array, scale: number, causal: boolean, q: Buf, k: Buf, v: Buf, dropMask: Buf | null, out: Buf, probs: Buf): void;
  attentionBackward(sizes: Float64Array, scale: number, causal: boolean, q: Buf, k: Buf, v: Buf, probs: Buf, dropMask: Buf | null, gy: Buf,
    gq: Buf | null, gk: Buf | null, gv: Buf | null): void;
  toBf16(x: Buf, out: Buf): void;
  fromBf16(x: Buf, out: Buf): void;
  gemmBf16(ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number, A: Buf, sA: number,
    B: Buf, sB: number, beta: number, C: Buf, sC: number, batch: number, bias: Buf | null): void;
  conv2dBf16(geom: Float64Array, x: Buf, w: Buf, bias: Buf | null, y: Buf): void;
  conv2dBackwardBf16(geom: Float64Array, x: Buf, w: Buf, gy: Buf, gx: Buf | null, gw: Buf, gb: Buf | null, setGx?: boolean): void;
  softmaxCausal(x: Buf, slices: number, rows: number, cols: number, out: Buf): void;
  lastBf16GemmImpl(): string;
  packBf16Weight(W: Buf, rows: number, cols: number, forward: boolean, M: number): PackedWeight | null;
  gemmBf16Packed(M: number, A: Buf, packed: PackedWeight, beta: number, C: Buf, bias: Buf | null): boolean;
  /** y = x·widen(W)ᵀ (+ bias), x and y float32, W bfloat16; false where M is past its thin rows (src/native/linear_widened.cc). Absent in an addon built before it. */
  linearWidenedThin?(x: Buf, w: Buf, M: number, N: number, K: number, y: Buf, bias: Buf | null): boolean;
  lastConvBf16Impl(): string;
  sgdStep(p: Buf, g: Buf, buf: Buf | null, lr: number, momentum: number, dampening: number,
    weightDecay: number, nesterov: boolean, firstStep: boolean): void;
  adamStep(p: Buf, g: Buf, m: Buf, v: Buf, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, decoupled: boolean, step: number): void;
}

export interface NativeLoadResult {
  backend: Backend | null;
  /** Why the addon is unavailable (null when it loaded). */
  reason: string | null;
  /** The addon was refused as built from other sources: no silent fallback then (src/tensor/dispatch.ts). */
  stale: boolean;
  /** The addon refused the environment's SMOLCLUSTER_CPU (a level this architecture lacks): no silent fallback either. */
  badCpuCap?: boolean;
}

/** Test and benchmark controls of the loaded addon (not part of the Backend contract). */
export interface NativeInternals {
  libraries: { dnnl: boolean; cblas: boolean; openmp: boolean };
  /** "auto" | "dnnl" | "dnnl_sgemm" | "cblas" | "thin" | "own" (throws if not compiled in). */
  setGemmEngine(name: string): void;
  getGemmEngine(): string;
  /** The engine the latest fp32 product ran on: "thin" | "dnnl" | "dnnl_sgemm" | "cblas" | "own" ("none" before any). */
  lastGemmEngine(): string;
  /** "auto" | "im2col" | "dnnl-plain" | "dnnl-blocked" (direct) | "dnnl-winograd" (where oneDNN has it). */
  setConvEngine(name: string): void;
  /** "auto" (oneDNN average pooling when built with it) | "own". */
  setPoolEngine(name: string): void;
  /**
   * Flush-to-zero / denormals-are-zero inside native kernels (x86; src/native/denormals.h). On by
   * default; SMOLCLUSTER_FLUSH_DENORMALS=0 starts a process with it off.
   */
  setFlushDenormals(on: boolean): void;
  getFlushDenormals(): boolean;
  /** The oneDNN implementation the last bf16 GEMM ran ("brg:avx512_core_amx_bf16", ...), or why none. */
  lastBf16GemmImpl(): string;
  /** Likewise for the last bf16 convolution call (forward, or backward-weights / backward-data). */
  lastConvBf16Impl(): string;
  /** The path the latest quantized product took: "generic" | "avx2" | "avx512-vnni" | "neon-dotprod" | "dequant+gemm" (native_quant.ts). */
  lastQuantImpl(): string;
  /** "auto" | "dot" | "gemm": which path quantized products take (src/native/quant_linear.cc); throws on an addon without them. */
  setQuantPath(path: string): void;
  /** x [rows, K] quantized per block of 32 as every integer product quantizes it: codes, a scale a block, d·Σq a half block. */
  quantizeActivations(x: Float32Array, K: number): { q: Int8Array; d: Float32Array; s: Float32Array };
  /** The addon's quantizer (QuantAddon.quantizeRows): true where it wrote x's blocks into out, false where it declined (tests). */
  quantizeRows(type: QuantType, x: Float32Array, rows: number, K: number, out: Uint8Array): boolean;
  path: string;
}

// Operation codes shared with src/native/elementwise.cc.
const UNARY: Record<UnaryOp, number> = { neg: 0, exp: 1, log: 2, sqrt: 3, relu: 4, gelu: 5, tanh: 6, sigmoid: 7, abs: 8, geluErf: 9 };
const BINARY: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, max: 5, min: 6 };

/**
 * An index buffer as the addon reads it: int32 values (an int32 storage's Int32Array). Anything else
 * is refused here, before C++ would read its bytes as indices.
 */
function ix(b: Buf): Int32Array {
  if (!(b instanceof Int32Array)) throw new TypeError(`native backend: index buffers are int32 (got ${b.constructor.name})`);
  return b;
}

/** Rows the cross-entropy scores (label ≥ 0; a negative label skips its row). */
function countScoredRows(labels: Int32Array): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] >= 0) n++;
  return n;
}

const MAX_DIMS = 16;
// Reused argument packs: kernel calls are synchronous, so one of each suffices.
const dimsPack = new Float64Array(1 + 3 * MAX_DIMS);
const convPack = new Float64Array(13);
const poolPack = new Float64Array(12);
const attentionPack = new Float64Array(7);

function packDims(shape: number[], s0: number[], s1: number[]): Float64Array {
  const nd = shape.length;
  if (nd > MAX_DIMS) throw new RangeError(`native backend: at most ${MAX_DIMS} dimensions, got ${nd}`);
  if (s0.length < nd || s1.length < nd) throw new RangeError('native backend: a strides array is shorter than the shape');
  dimsPack[0] = nd;
  for (let i = 0; i < nd; i++) {
    dimsPack[1 + i] = shape[i];
    dimsPack[1 + nd + i] = s0[i];
    dimsPack[1 + 2 * nd + i] = s1[i];
  }
  return dimsPack;
}

function packConv(g: Conv2dGeometry): Float64Array {
  const p = convPack;
  p[0] = g.batch; p[1] = g.inC; p[2] = g.inH; p[3] = g.inW; p[4] = g.outC; p[5] = g.kH; p[6] = g.kW;
  p[7] = g.strideH; p[8] = g.strideW; p[9] = g.padH; p[10] = g.padW; p[11] = g.outH; p[12] = g.outW;
  return p;
}

function packPool(g: Pool2dGeometry): Float64Array {
  const p = poolPack;
  p[0] = g.batch; p[1] = g.channels; p[2] = g.inH; p[3] = g.inW; p[4] = g.kH; p[5] = g.kW;
  p[6] = g.strideH; p[7] = g.strideW; p[8] = g.padH; p[9] = g.padW; p[10] = g.outH; p[11] = g.outW;
  return p;
}

function packAttention(g: AttentionGeometry): Float64Array {
  const p = attentionPack;
  p[0] = g.bh; p[1] = g.tq; p[2] = g.tk; p[3] = g.d; p[4] = g.dv; p[5] = g.groups; p[6] = g.kvCapacity ?? g.tk;
  return p;
}

function opCode<T extends string>(table: Record<T, number>, op: T, kind: string): number {
  const code = table[op];
  if (code === undefined) throw new TypeError(`native backend: unknown ${kind} op "${op}"`);
  return code;
}

function makeBackend(n: Addon): Backend {
  return cpuBackend(makeHostBackend(n));
}

/**
 * The addon's kernels on host arrays. Where it has no C++ kernel (the random fills, the pow and
 * max backwards, eval batch-norm's backward) the js kernel serves, as the addon's own does today.
 */
function makeHostBackend(n: Addon): HostBackend {
  const js = jsHostBackend;
  return {
    name: 'native',
    device: CPU,
    dtypes: ['float32'],
    description: n.description,
    multithreaded: true,
    setThreads(threads: number): void {
      if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`setThreads: expected an integer >= 1, got ${threads}`);
      n.setThreads(threads);
    },
    getThreads: () => n.getThreads(),
    gemm: (ta, tb, M, N, K, alpha, A, sA, B, sB, beta, C, sC, batch, bias) =>
      n.gemm(ta, tb, M, N, K, alpha, A, sA, B, sB, beta, C, sC, batch, bias ?? null),
    unary: (op, x, out) => n.unary(opCode(UNARY, op, 'unary'), x, out),
    unaryBackward: (op, x, y, gy, gx) => n.unaryBackward(opCode(UNARY, op, 'unary'), x, y, gy, gx),
    binary: (op, a, aStrides, b, bStrides, out, shape) =>
      n.binary(opCode(BINARY, op, 'binary'), a, b, out, packDims(shape, aStrides, bStrides)),
    affine: (x, scale, shift, out) => n.affine(x, scale, shift, out),
    powScalar: (x, p, out) => n.powScalar(x, p, out),
    axpy: (alpha, x, y) => n.axpy(alpha, x, y),
    addInto: (y, x) => n.addInto(y, x),
    fill: (x, value) => n.fill(x, value),
    dropoutMask: (k0, k1, threshold, keep, out) => n.dropoutMask(k0, k1, threshold, keep, out),
    sumSquares: (x, divisor, out) => {
      out[0] = n.sumSquares(x) / divisor;
    },
    subBuffer: js.subBuffer,
    fillNormal: js.fillNormal,
    fillUniform: js.fillUniform,
    powBackward: js.powBackward,
    mseLossBackward: (diff, gy, count, gPred, gTarget) => {
      const c = (2 * gy[0]) / count;
      if (gPred) n.axpy(c, diff, gPred);
      if (gTarget) n.axpy(-c, diff, gTarget);
    },
    reduceMaxBackward: js.reduceMaxBackward,
    batchNormEvalBackward: js.batchNormEvalBackward,
    stridedCopy: (src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape, accumulate) =>
      n.stridedCopy(src, srcOffset, dst, dstOffset, packDims(shape, srcStrides, dstStrides), accumulate),
    reduceSum: (x, outer, len, inner, out) => n.reduceSum(x, outer, len, inner, out),
    reduceMax: (x, outer, len, inner, out, argmax) => n.reduceMax(x, outer, len, inner, out, ix(argmax)),
    softmax: (x, rows, cols, out) => n.softmax(x, rows, cols, out),
    softmaxBackward: (y, gy, rows, cols, gx) => n.softmaxBackward(y, gy, rows, cols, gx),
    logSoftmax: (x, rows, cols, out) => n.logSoftmax(x, rows, cols, out),
    logSoftmaxBackward: (y, gy, rows, cols, gx) => n.logSoftmaxBackward(y, gy, rows, cols, gx),
    softmaxCrossEntropy: (logits, labels, rows, cols, probs, probScale, loss, smoothing = 0) => {
      // Label smoothing's linear part is summed here before the kernel (which may write probs over
      // the logits): one host pass over the logits, paid only by runs that smooth.
      const scored = smoothing === 0 ? 0 : countScoredRows(ix(labels));
      const correction = scored === 0 ? 0 : (smoothing * smoothingSum(logits, ix(labels), rows, cols)) / scored;
      loss[0] = n.softmaxCrossEntropy(logits, ix(labels), rows, cols, probs, probScale) + correction;
    },
    crossEntropyGradientInPlace: (probs, labels, rows, cols, gy, counted, smoothing = 0) => {
      const g = gy[0];
      if (g !== 1) n.affine(probs, g, 0, probs);
      // The native kernels take scale as a float32; the js ones keep the double.
      subtractLabels(probs, ix(labels), rows, cols, Math.fround(g / counted), smoothing);
    },
    softmaxCrossEntropyBackward: (probs, labels, rows, cols, scale, g) =>
      n.softmaxCrossEntropyBackward(probs, ix(labels), rows, cols, scale, g),
    conv2d: (g, x, w, bias, y) => n.conv2d(packConv(g), x, w, bias, y),
    conv2dBackward: (g, x, w, gy, gx, gw, gb, setGx = false) => n.conv2dBackward(packConv(g), x, w, gy, gx, gw, gb, setGx),
    maxPool2d: (g, x, y, argmax) => n.maxPool2d(packPool(g), x, y, ix(argmax)),
    maxPool2dRelu: (g, x, y, argmax) => n.maxPool2dRelu(packPool(g), x, y, ix(argmax)),
    maxPool2dBackward: (g, gy, argmax, gx) => n.maxPool2dBackward(packPool(g), gy, ix(argmax), gx),
    maxPool2dBackwardSet: (g, gy, argmax, gx) => n.maxPool2dBackwardSet(packPool(g), gy, ix(argmax), gx),
    avgPool2d: (g, x, y) => n.avgPool2d(packPool(g), x, y),
    avgPool2dBackward: (g, gy, gx) => n.avgPool2dBackward(packPool(g), gy, gx),
    batchNorm: (x, outer, C, inner, gamma, beta, rm, rv, training, momentum, eps, y, mean, invStd, relu = false) =>
      n.batchNorm(x, outer, C, inner, gamma, beta, rm, rv, training, momentum, eps, y, mean, invStd, relu),
    batchNormBackward: (x, outer, C, inner, gamma, mean, invStd, gy, gx, gGamma, gBeta, setGx = false, reluY = null) =>
      reluY instanceof Uint16Array // a bf16 copy of the output (backend.ts)
        ? n.batchNormBackward(x, outer, C, inner, gamma, mean, invStd, gy, gx, gGamma, gBeta, setGx, null, reluY)
        : n.batchNormBackward(x, outer, C, inner, gamma, mean, invStd, gy, gx, gGamma, gBeta, setGx, reluY),
    layerNorm: (x, rows, cols, gamma, beta, eps, y, mean, invStd) =>
      n.layerNorm(x, rows, cols, gamma, beta, eps, y, mean, invStd),
    layerNormBackward: (x, rows, cols, gamma, mean, invStd, gy, gx, gGamma, gBeta) =>
      n.layerNormBackward(x, rows, cols, gamma, mean, invStd, gy, gx, gGamma, gBeta),
    rmsNorm: (x, rows, cols, weight, eps, y, invRms) => n.rmsNorm(x, rows, cols, weight, eps, y, invRms),
    rmsNormBackward: (x, rows, cols, weight, invRms, gy, gx, gWeight) => n.rmsNormBackward(x, rows, cols, weight, invRms, gy, gx, gWeight),
    rotary: (x, cos, sin, slices, t, d, out) => n.rotary(x, cos, sin, slices, t, d, out),
    rotaryBackward: (gy, cos, sin, slices, t, d, gx) => n.rotaryBackward(gy, cos, sin, slices, t, d, gx),
    siluMul: (gate, up, out) => n.siluMul(gate, up, out),
    siluMulBackward: (gate, up, gy, gGate, gUp) => n.siluMulBackward(gate, up, gy, gGate, gUp),
    embedding: (table, ids, dim, out) => n.embedding(table, ix(ids), dim, out),
    embeddingBackward: (gy, ids, dim, gTable) => n.embeddingBackward(gy, ix(ids), dim, gTable),
    attention: (g, q, k, v, mask, out, probs) => n.attention(packAttention(g), g.scale, g.causal, q, k, v, mask, out, probs),
    attentionBackward: (g, q, k, v, probs, mask, gy, gq, gk, gv) =>
      n.attentionBackward(packAttention(g), g.scale, g.causal, q, k, v, probs, mask, gy, gq, gk, gv),
    // Halved in float64: a block past 2 GiB would turn negative under `>> 1` (int32).
    adviseHugePages: (x) => n.adviseHugePages(new Uint16Array(x.buffer, x.byteOffset, Math.floor(x.byteLength / 2))),
    attentionDecode: (g, q, kNew, vNew, k, v, out) => n.attentionDecodeF32(packAttention(g), g.scale, g.causal, q, kNew, vNew, k, v, out),
    toBf16: (x, out) => n.toBf16(x, out),
    fromBf16: (x, out) => n.fromBf16(x, out),
    bf16View: js.bf16View,
    bfloat16: {
      gemm: (ta, tb, M, N, K, alpha, A, sA, B, sB, beta, C, sC, batch, bias) =>
        n.gemmBf16(ta, tb, M, N, K, alpha, A, sA, B, sB, beta, C, sC, batch, bias ?? null),
      conv2d: (g, x, w, bias, y) => n.conv2dBf16(packConv(g), x, w, bias, y),
      conv2dBackward: (g, x, w, gy, gx, gw, gb, setGx = false) =>
        n.conv2dBackwardBf16(packConv(g), x, w, gy, gx, gw, gb, setGx),
      packWeight: (w, rows, cols, forward, M) => n.packBf16Weight(w, rows, cols, forward, M),
      gemmPacked: (M, A, packed, beta, C, bias) => n.gemmBf16Packed(M, A, packed, beta, C, bias),
      attention: (g, q, k, v, mask, out, probs) => n.attentionBf16(packAttention(g), g.scale, g.causal, q, k, v, mask, out, probs),
      attentionBackward: (g, q, k, v, probs, mask, gy, gq, gk, gv) =>
        n.attentionBf16Backward(packAttention(g), g.scale, g.causal, q, k, v, probs, mask, gy, gq, gk, gv),
      attentionDecode: (g, q, kNew, vNew, k, v, out) => n.attentionDecodeBf16(packAttention(g), g.scale, g.causal, q, kNew, vNew, k, v, out),
      ...(n.linearWidenedThin ? { linearWidenedThin: (M: number, N: number, K: number, x: Buf, w: Buf, y: Buf, bias: Buf | null) => n.linearWidenedThin!(x, w, M, N, K, y, bias) } : {}),
    },
    softmaxCausal: (x, slices, rows, cols, out) => n.softmaxCausal(x, slices, rows, cols, out),
    sgdStep: (p, g, buf, h: SgdHyper) =>
      n.sgdStep(p, g, buf, h.lr, h.momentum, h.dampening, h.weightDecay, h.nesterov, h.firstStep),
    adamStep: (p, g, m, v, h: AdamHyper) =>
      n.adamStep(p, g, m, v, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.decoupled, h.step),
    ...(hasLlamaDecode(n) ? { llamaDecodeLayer: (b: LlamaDecodeBlock<Buf>) => llamaDecodeLayer(n, b) } : {}),
    ...(n.rowArgmax ? { rowArgmax: (x: Buf) => n.rowArgmax!(x) } : {}),
    ...(hasLlamaStack(n) ? {
      llamaDecodePlan: (shape: LlamaStackShape, blocks: readonly LlamaDecodeWeights<Buf>[]) => llamaDecodePlan(n, shape, blocks),
      llamaDecodeStack: (plan: LlamaDecodePlan, s: LlamaDecodeStep<Buf>) => llamaDecodeStack(n, plan, s),
    } : {}),
    // Every format's kernels (src/native/quant_linear.cc), where the addon has them.
    ...(hasQuantKernels(n)
      ? { quantTypes: QUANT_TYPES, quantKernels: (type) => nativeQuantKernels(n, type) as never, repackQuant: (type, w, rows, cols) => nativeRepackQuant(n, type, w as Uint8Array, rows, cols) }
      : {}),
  };
}

/** The directory holding smolcluster's package.json, searched upwards from this file. */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'smolcluster') return dir;
      } catch {
        // an unreadable manifest is not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Where a loaded addon came from (`smolcluster info` says it). */
export type AddonOrigin = 'SMOLCLUSTER_NATIVE_ADDON' | 'prebuilt' | 'built from source';

export interface AddonCandidate { path: string; origin: AddonOrigin }

/**
 * The addons to try, in order; the first that loads wins. The prebuilt one comes first: it is what
 * the npm package ships, and it needs no install script, compiler or system oneDNN. A git checkout
 * has no prebuilds/ until scripts/prebuild.mjs runs, so it loads its own build.
 */
export function addonCandidates(root: string | null, override = process.env.SMOLCLUSTER_NATIVE_ADDON,
  target = `${process.platform}-${process.arch}`): AddonCandidate[] {
  if (override) return [{ path: resolve(override), origin: 'SMOLCLUSTER_NATIVE_ADDON' }];
  if (root === null) return [];
  return [
    { path: join(root, 'prebuilds', target, 'smolcluster.node'), origin: 'prebuilt' },
    { path: join(root, 'build', 'Release', 'smolcluster.node'), origin: 'built from source' },
  ];
}

/** One load attempt: the result, the raw exports when it loaded, and the path tried. */
export interface LoadedAddon {
  result: NativeLoadResult;
  addon: Addon | null;
  path: string;
  origin?: AddonOrigin;
  /** Candidates tried before the one that loaded, each with why it was passed over. */
  passedOver?: string[];
}

let loaded: LoadedAddon | null = null;

/** How long OpenMP's idle threads spin before they sleep, in libgomp's spins: 0.25 ms on the AMD EPYC (a `pause` 25 ns, measured), longer where `pause` is slower (Intel since Skylake). */
export const OPENMP_SPIN_COUNT = 10_000;

/**
 * Loads the addon with OpenMP's idle threads spinning briefly, then sleeping, between parallel
 * regions (OMP_WAIT_POLICY=passive with GOMP_SPINCOUNT=OPENMP_SPIN_COUNT, read once by libgomp when the
 * addon loads) unless the user chose a policy or a spin count. Spinning without end took the core
 * from the main thread on a loaded 2-core machine: bench:threads measured 2 threads at 0.06–0.35× of 1
 * on the MLP and CNN (docs/BENCHMARKS.md). Sleeping at once made every region pay a futex wake
 * (~70 µs on the VMs here), more than a decode product takes: a 2-thread decode ran at half the
 * 1-thread rate (docs/QUANTIZE.md "Two threads"). With libgomp's passive policy, a process whose
 * OpenMP threads outnumber its cores does not spin at all (its throttled count stays 0).
 * The variables are removed again, so processes we start later (PyTorch references) keep their defaults.
 */
function withShortSpinOpenMp<T>(load: () => T): T {
  if (process.env.OMP_WAIT_POLICY !== undefined) return load();
  const ownSpin = process.env.GOMP_SPINCOUNT === undefined;
  process.env.OMP_WAIT_POLICY = 'passive';
  if (ownSpin) process.env.GOMP_SPINCOUNT = String(OPENMP_SPIN_COUNT);
  try {
    return load();
  } finally {
    delete process.env.OMP_WAIT_POLICY;
    if (ownSpin) delete process.env.GOMP_SPINCOUNT;
  }
}

function load(): LoadedAddon {
  if (loaded) return loaded;
  const root = packageRoot();
  const candidates = addonCandidates(root);
  loaded = candidates.length === 0
    ? { result: { backend: null, reason: 'package root (smolcluster package.json) not found', stale: false }, addon: null, path: '' }
    : loadFirst(candidates, root);
  return loaded;
}

/**
 * The first candidate that loads. One that is missing is passed over quietly (a checkout has no
 * prebuild, an install without scripts no build); one that is stale or fails to load is passed over
 * with its reason. When none loads, the reasons of all are given, and a stale one makes the result
 * stale (an error, not a silent fall back to js: src/tensor/dispatch.ts).
 */
export function loadFirst(candidates: AddonCandidate[], root: string | null): LoadedAddon {
  const passedOver: string[] = [];
  const missing: LoadedAddon[] = [];
  let stale = false;
  let badCpuCap = false;
  for (const c of candidates) {
    const attempt = loadAddonAt(c.path, root);
    if (attempt.result.backend) return { ...attempt, origin: c.origin, passedOver };
    if (!existsSync(c.path)) {
      missing.push(attempt);
      continue;
    }
    stale ||= attempt.result.stale;
    badCpuCap ||= attempt.result.badCpuCap === true;
    passedOver.push(`${c.origin} ${c.path}: ${attempt.result.reason}`);
  }
  const last = candidates[candidates.length - 1];
  // Nothing there at all: the source build's own "not built" reason says what to run.
  const reason = passedOver.length === 0 ? missing[missing.length - 1].result.reason : passedOver.join('; ');
  return { result: { backend: null, reason, stale, badCpuCap }, addon: null, path: last.path, passedOver };
}

/**
 * Loads the addon at path, unless its source stamp differs from the native sources under root
 * (src/tensor/backends/native_stamp.ts). Not cached: load() caches; tests call this on temp dirs.
 */
export function loadAddonAt(path: string, root: string | null): LoadedAddon {
  if (!existsSync(path)) {
    return { result: { backend: null, reason: `addon not built (${path} is missing; run npm install or node scripts/build-native.mjs)`, stale: false }, addon: null, path };
  }
  const stale = root === null ? null : staleAddonReason(path, root);
  if (stale !== null) return { result: { backend: null, reason: stale, stale: true }, addon: null, path };
  try {
    const addon = withShortSpinOpenMp(() => createRequire(import.meta.url)(path) as Addon);
    const result = { result: { backend: makeBackend(addon), reason: null, stale: false }, addon, path };
    // Large tensors stay in the heap between steps instead of fresh mmaps (src/native/memory.cc).
    if (process.env.SMOLCLUSTER_KEEP_LARGE_ALLOCATIONS !== '0') addon.keepLargeAllocations();
    return result;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    const badCpuCap = msg.includes('SMOLCLUSTER_CPU=');
    return { result: { backend: null, reason: `addon failed to load: ${msg}`, stale: false, badCpuCap }, addon: null, path };
  }
}

/** The native backend, or null and the reason it is unavailable. Loaded once, then cached. */
export function loadNativeBackend(): NativeLoadResult {
  return load().result;
}

/** Engine selection hooks for tests and benchmarks; null when the addon is unavailable. */
export function nativeInternals(): NativeInternals | null {
  const { addon, path } = load();
  if (!addon) return null;
  return {
    libraries: addon.libraries,
    setGemmEngine: (name) => addon.setGemmEngine(name),
    getGemmEngine: () => addon.getGemmEngine(),
    lastGemmEngine: () => addon.lastGemmEngine(),
    setConvEngine: (name) => addon.setConvEngine(name),
    setPoolEngine: (name) => addon.setPoolEngine(name),
    setFlushDenormals: (on) => addon.setFlushDenormals(on),
    getFlushDenormals: () => addon.getFlushDenormals(),
    lastBf16GemmImpl: () => addon.lastBf16GemmImpl(),
    lastConvBf16Impl: () => addon.lastConvBf16Impl(),
    lastQuantImpl: () => (hasQuantKernels(addon) ? addon.lastQuantImpl() : 'none'),
    setQuantPath: (p) => {
      if (!hasQuantKernels(addon)) throw new Error('setQuantPath: this addon has no quant kernels');
      addon.setQuantPath(p);
    },
    quantizeActivations: (x, K) => {
      if (!hasQuantKernels(addon)) throw new Error('quantizeActivations: this addon has no quant kernels');
      const q = new Int8Array(x.length), d = new Float32Array(x.length / 32), s = new Float32Array(x.length / 16);
      addon.quantizeActivations(x, x.length / K, K, new Uint8Array(q.buffer), d, s);
      return { q, d, s };
    },
    quantizeRows: (type, x, rows, K, out) => (hasQuantKernels(addon) && addon.quantizeRows ? addon.quantizeRows(QUANT_TYPES.indexOf(type), x, rows, K, out) : false),
    path,
  };
}

/** Which addon file serves the native backend, why (`origin`), and where its oneDNN was mapped from. */
export interface NativeAddonSource {
  path: string;
  origin: AddonOrigin;
  /** The file the loader mapped libdnnl from (/proc/self/maps; null off Linux or without oneDNN). */
  dnnlLibrary: string | null;
  passedOver: string[];
}

/** Null when the addon is unavailable. */
export function nativeAddonSource(): NativeAddonSource | null {
  const { addon, path, origin, passedOver } = load();
  if (!addon) return null;
  return { path, origin: origin ?? 'built from source', dnnlLibrary: mappedLibrary(/^libdnnl\.so/), passedOver: passedOver ?? [] };
}

/** The path of the first shared library mapped into this process whose file name matches. */
function mappedLibrary(name: RegExp): string | null {
  if (process.platform !== 'linux') return null;
  try {
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const file = line.split(/\s+/)[5];
      if (file && name.test(basename(file))) return file;
    }
  } catch {
    // no procfs: say nothing rather than guess
  }
  return null;
}

/** The CPU feature table the native kernels dispatch on, or null when the addon is unavailable. */
export function nativeCpuTable(): CpuTable | null {
  return load().addon?.cpu ?? null;
}

/** The addon's exports as loaded (null when unavailable), for the few non-tensor users (src/launch/shm_native.ts hands comm its shared-memory half). */
export function nativeAddonExports(): Readonly<Record<string, unknown>> | null {
  return load().addon as Readonly<Record<string, unknown>> | null;
}
