/**
 * Op-level parity of every backend in the conformance list (test/tensor/backends/list.ts) with the
 * reference (js): every op runs on the same float32 inputs under each backend; outputs, input
 * gradients (and batch-norm's running statistics) must agree with the reference's within float32
 * tolerance — the gradient check of a backend against the reference. A backend on another device
 * (webgpu) gets the same inputs copied to its device; values come back with an asynchronous read.
 *
 * A backend of the list that is unavailable here is skipped with the reason — except on CI
 * (CI=true), where a missing required backend is a failure (list.test.ts).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  Tensor, abs, add, affine, avgPool2d, backward, batchNorm, concat, conv2d, crossEntropy, div, dropout, embedding,
  exp, flatten, gelu, geluErf, globalAvgPool2d, scaledDotProductAttention, layerNorm, linear, log, logSoftmax, matmul, max, maxPool2d, mean, mseLoss, mul,
  neg, permute, pow, powScalar, relu, reshape, setBackend, sigmoid, slice, softmax, sqrt, sub, sum, tanh, transpose,
  rmsNorm, rotary, siluMul,
  type BackendName, type Device, type HostArray, type Storage, CPU, deviceMemory,
} from '../../src/tensor/index.js';
import type { WebGpuBackend } from '../../src/tensor/backends/webgpu/index.js';
import { REFERENCE, backendList, closeDeviceBackends, loadDeviceBackends } from './backends/list.js';

// The GPU backends of the list join here: this test reads outputs and gradients asynchronously.
await loadDeviceBackends();
import { Rng, assertClose, awayFromZero, distinct, labels, randn, uniform } from '../helpers/tensors.js';
import { parityTolerance } from '../helpers/tolerance.js';


interface Case {
  name: string;
  /** float32 inputs (all get requiresGrad unless listed in `frozen`). */
  inputs: (r: Rng) => Tensor[];
  /** The op; `extras` are buffers to compare besides output and gradients (e.g. running stats). */
  run: (...xs: Tensor[]) => { out: Tensor; extras?: Storage[] };
  frozen?: number[];
}

const f32 = 'float32' as const;

/** float32 cos and sin [t, d/2] of Llama's angles p·10000^(−2i/d) (rotary's constant tables). */
function rotaryTables(t: number, d: number): [Tensor, Tensor] {
  const angles = Array.from({ length: t * (d / 2) }, (_, k) => Math.floor(k / (d / 2)) * 10000 ** (-(2 * (k % (d / 2))) / d));
  return [Tensor.from(angles.map(Math.cos), [t, d / 2], f32), Tensor.from(angles.map(Math.sin), [t, d / 2], f32)];
}
const rn = (s: number[], scale = 1) => (r: Rng): Tensor => randn(s, r, f32, scale);
const op1 = (fn: (x: Tensor) => Tensor) => (x: Tensor) => ({ out: fn(x) });
const op2 = (fn: (a: Tensor, b: Tensor) => Tensor) => (a: Tensor, b: Tensor) => ({ out: fn(a, b) });

/** The device the case's tensors live on (the backend under test's). */
let caseDevice: Device = CPU;

function bnState(C: number, training: boolean) {
  const runningMean = new Float32Array(C).map((_, i) => 0.1 * i);
  const runningVar = new Float32Array(C).map((_, i) => 1 + 0.2 * i);
  const memory = deviceMemory(caseDevice);
  return { runningMean: memory.fromHost(runningMean), runningVar: memory.fromHost(runningVar), momentum: 0.1, eps: 1e-5, training };
}

const CASES: Case[] = [
  // ---- elementwise ----
  { name: 'neg', inputs: (r) => [rn([7, 9])(r)], run: op1(neg) },
  { name: 'exp', inputs: (r) => [rn([7, 9])(r)], run: op1(exp) },
  { name: 'log', inputs: (r) => [uniform([7, 9], r, 0.2, 3, f32)], run: op1(log) },
  { name: 'sqrt', inputs: (r) => [uniform([7, 9], r, 0.2, 3, f32)], run: op1(sqrt) },
  { name: 'relu', inputs: (r) => [awayFromZero([7, 9], r, 0.05, 2, f32)], run: op1(relu) },
  { name: 'gelu', inputs: (r) => [rn([7, 9], 2)(r)], run: op1(gelu) },
  { name: 'geluErf', inputs: (r) => [rn([7, 9], 3)(r)], run: op1(geluErf) },
  { name: 'tanh', inputs: (r) => [rn([7, 9], 2)(r)], run: op1(tanh) },
  { name: 'sigmoid', inputs: (r) => [rn([7, 9], 2)(r)], run: op1(sigmoid) },
  { name: 'abs', inputs: (r) => [awayFromZero([7, 9], r, 0.05, 2, f32)], run: op1(abs) },
  { name: 'powScalar 2', inputs: (r) => [rn([7, 9])(r)], run: op1((x) => powScalar(x, 2)) },
  { name: 'powScalar 3', inputs: (r) => [rn([7, 9])(r)], run: op1((x) => powScalar(x, 3)) },
  { name: 'powScalar 0.5', inputs: (r) => [uniform([7, 9], r, 0.2, 3, f32)], run: op1((x) => powScalar(x, 0.5)) },
  { name: 'affine', inputs: (r) => [rn([7, 9])(r)], run: op1((x) => affine(x, -1.3, 0.7)) },
  ...(['add', 'sub', 'mul', 'div', 'pow'] as const).flatMap((name): Case[] => {
    const fn = { add, sub, mul, div, pow: (a: Tensor, b: Tensor | number) => pow(a, b) }[name] as (a: Tensor, b: Tensor | number) => Tensor;
    const lhs = (s: number[]) => (r: Rng): Tensor => (name === 'pow' ? uniform(s, r, 0.5, 2, f32) : randn(s, r, f32));
    const rhs = (s: number[]) => (r: Rng): Tensor =>
      name === 'div' ? awayFromZero(s, r, 0.5, 2, f32) : name === 'pow' ? uniform(s, r, -1.5, 1.5, f32) : randn(s, r, f32);
    return [
      { name: `${name} same shape`, inputs: (r) => [lhs([5, 6])(r), rhs([5, 6])(r)], run: op2(fn) },
      { name: `${name} row broadcast`, inputs: (r) => [lhs([5, 6])(r), rhs([6])(r)], run: op2(fn) },
      { name: `${name} both sides broadcast`, inputs: (r) => [lhs([3, 1, 6])(r), rhs([4, 1])(r)], run: op2(fn) },
      { name: `${name} 0-d operand`, inputs: (r) => [lhs([])(r), rhs([4, 3])(r)], run: op2(fn) },
      { name: `${name} number operand`, inputs: (r) => [lhs([4, 3])(r)], run: op1((a) => fn(a, 1.25)) },
    ];
  }),
  // ---- matmul / linear ----
  { name: 'matmul 2-d (odd sizes)', inputs: (r) => [rn([33, 47])(r), rn([47, 29])(r)], run: op2(matmul) },
  { name: 'matmul folded [..., M, K] @ [K, N]', inputs: (r) => [rn([3, 5, 17])(r), rn([17, 6])(r)], run: op2(matmul) },
  { name: 'matmul shared A [M, K] @ [..., K, N]', inputs: (r) => [rn([5, 17])(r), rn([3, 17, 6])(r)], run: op2(matmul) },
  { name: 'matmul batched', inputs: (r) => [rn([2, 3, 5, 17])(r), rn([2, 3, 17, 6])(r)], run: op2(matmul) },
  { name: 'matmul larger (64 x 128 x 96)', inputs: (r) => [rn([64, 128])(r), rn([128, 96])(r)], run: op2(matmul) },
  { name: 'linear with bias', inputs: (r) => [rn([9, 13])(r), rn([7, 13])(r), rn([7])(r)], run: (x, w, b) => ({ out: linear(x, w, b) }) },
  { name: 'linear without bias, 3-d input', inputs: (r) => [rn([2, 5, 13])(r), rn([7, 13])(r)], run: (x, w) => ({ out: linear(x, w, null) }) },
  { name: 'linear, frozen input', inputs: (r) => [rn([9, 13])(r), rn([7, 13])(r), rn([7])(r)], run: (x, w, b) => ({ out: linear(x, w, b) }), frozen: [0] },
  // ---- reductions ----
  { name: 'sum all', inputs: (r) => [rn([4, 5, 6])(r)], run: op1((x) => sum(x)) },
  { name: 'sum axis 1 keepDims', inputs: (r) => [rn([4, 5, 6])(r)], run: op1((x) => sum(x, 1, true)) },
  { name: 'sum axes [0, 2]', inputs: (r) => [rn([4, 5, 6])(r)], run: op1((x) => sum(x, [0, 2])) },
  { name: 'mean axis -1', inputs: (r) => [rn([4, 5, 6])(r)], run: op1((x) => mean(x, -1)) },
  { name: 'mean all keepDims', inputs: (r) => [rn([4, 5, 6])(r)], run: op1((x) => mean(x, undefined, true)) },
  { name: 'max axis 1', inputs: (r) => [distinct([4, 5, 6], r, f32)], run: op1((x) => max(x, 1)) },
  { name: 'max axis -1 keepDims', inputs: (r) => [distinct([4, 5, 6], r, f32)], run: op1((x) => max(x, -1, true)) },
  // ---- layout ----
  { name: 'reshape', inputs: (r) => [rn([4, 6])(r)], run: op1((x) => reshape(x, [3, -1])) },
  { name: 'flatten', inputs: (r) => [rn([2, 3, 4])(r)], run: op1((x) => flatten(x)) },
  { name: 'permute', inputs: (r) => [rn([2, 3, 4, 5])(r)], run: op1((x) => permute(x, [3, 1, 0, 2])) },
  { name: 'transpose', inputs: (r) => [rn([3, 4, 5])(r)], run: op1((x) => transpose(x)) },
  { name: 'slice negative', inputs: (r) => [rn([6, 5])(r)], run: op1((x) => slice(x, 1, -4, -1)) },
  { name: 'slice axis 0', inputs: (r) => [rn([6, 5])(r)], run: op1((x) => slice(x, 0, 1, 4)) },
  { name: 'concat axis 0', inputs: (r) => [rn([2, 3])(r), rn([4, 3])(r)], run: op2((a, b) => concat([a, b], 0)) },
  { name: 'concat axis 1', inputs: (r) => [rn([2, 1, 3])(r), rn([2, 4, 3])(r)], run: op2((a, b) => concat([a, b], 1)) },
  { name: 'concat last axis', inputs: (r) => [rn([2, 3, 2])(r), rn([2, 3, 5])(r)], run: op2((a, b) => concat([a, b], -1)) },
  // ---- softmax family and losses ----
  { name: 'softmax', inputs: (r) => [rn([6, 11], 3)(r)], run: op1((x) => softmax(x)) },
  { name: 'logSoftmax', inputs: (r) => [rn([6, 11], 3)(r)], run: op1((x) => logSoftmax(x)) },
  { name: 'crossEntropy with ignored rows', inputs: (r) => [rn([6, 10], 3)(r)], run: op1((x) => crossEntropy(x, labels([3, -1, 0, 9, 9, -1]))) },
  { name: 'crossEntropy of an intermediate, scaled', inputs: (r) => [rn([6, 10], 3)(r)], run: op1((x) => affine(crossEntropy(affine(x, 2, 0), labels([3, -1, 0, 9, 9, -1])), 3, 0)) },
  { name: 'mseLoss', inputs: (r) => [rn([5, 7])(r), rn([5, 7])(r)], run: op2(mseLoss) },
  // ---- convolution and pooling ----
  {
    name: 'conv2d stride 1 pad 0 bias', inputs: (r) => [rn([2, 3, 8, 8])(r), rn([4, 3, 3, 3], 0.3)(r), rn([4])(r)],
    run: (x, w, b) => ({ out: conv2d(x, w, b) }),
  },
  {
    name: 'conv2d stride 2 pad 1 no bias', inputs: (r) => [rn([2, 3, 9, 9])(r), rn([5, 3, 3, 3], 0.3)(r)],
    run: (x, w) => ({ out: conv2d(x, w, null, { stride: 2, padding: 1 }) }),
  },
  {
    name: 'conv2d non-square, stride [2, 1], pad [1, 0]', inputs: (r) => [rn([2, 2, 7, 6])(r), rn([3, 2, 3, 2], 0.3)(r), rn([3])(r)],
    run: (x, w, b) => ({ out: conv2d(x, w, b, { stride: [2, 1], padding: [1, 0] }) }),
  },
  {
    name: 'conv2d frozen input', inputs: (r) => [rn([1, 2, 6, 6])(r), rn([3, 2, 3, 3], 0.3)(r), rn([3])(r)],
    run: (x, w, b) => ({ out: conv2d(x, w, b, { padding: 1 }) }), frozen: [0],
  },
  // Shapes that leave the implicit-GEMM tiles (64 pixels × 64 channels, K in steps of 16) partly empty.
  {
    name: 'conv2d 1x1, 70 out channels (past one tile)', inputs: (r) => [rn([2, 5, 6, 7])(r), rn([70, 5, 1, 1], 0.3)(r), rn([70])(r)],
    run: (x, w, b) => ({ out: conv2d(x, w, b) }),
  },
  {
    name: 'conv2d 7x7 stem, stride 2 pad 3', inputs: (r) => [rn([2, 3, 19, 17])(r), rn([9, 3, 7, 7], 0.1)(r), rn([9])(r)],
    run: (x, w, b) => ({ out: conv2d(x, w, b, { stride: 2, padding: 3 }) }),
  },
  {
    name: 'conv2d 3x3 stride 2 pad 1, 17 in / 33 out channels', inputs: (r) => [rn([3, 17, 10, 9])(r), rn([33, 17, 3, 3], 0.1)(r)],
    run: (x, w) => ({ out: conv2d(x, w, null, { stride: 2, padding: 1 }) }),
  },
  {
    // 2,304 output pixels: the weight gradient splits its K over two workgroup layers.
    name: 'conv2d 3x3 pad 1, long K (split weight gradient)', inputs: (r) => [rn([4, 3, 24, 24])(r), rn([6, 3, 3, 3], 0.3)(r), rn([6])(r)],
    run: (x, w, b) => ({ out: conv2d(x, w, b, { padding: 1 }) }),
  },
  { name: 'maxPool2d k2', inputs: (r) => [distinct([2, 3, 6, 6], r, f32)], run: op1((x) => maxPool2d(x, { kernel: 2 })) },
  { name: 'maxPool2d k3 s2 p1', inputs: (r) => [distinct([2, 3, 7, 7], r, f32)], run: op1((x) => maxPool2d(x, { kernel: 3, stride: 2, padding: 1 })) },
  { name: 'maxPool2d non-square', inputs: (r) => [distinct([1, 2, 5, 6], r, f32)], run: op1((x) => maxPool2d(x, { kernel: [2, 3], stride: [1, 2], padding: [1, 1] })) },
  { name: 'avgPool2d k2', inputs: (r) => [rn([2, 3, 6, 6])(r)], run: op1((x) => avgPool2d(x, { kernel: 2 })) },
  { name: 'avgPool2d k3 s2 p1', inputs: (r) => [rn([2, 3, 7, 7])(r)], run: op1((x) => avgPool2d(x, { kernel: 3, stride: 2, padding: 1 })) },
  { name: 'avgPool2d non-square', inputs: (r) => [rn([1, 2, 5, 6])(r)], run: op1((x) => avgPool2d(x, { kernel: [2, 3], stride: [1, 2], padding: [1, 1] })) },
  { name: 'globalAvgPool2d', inputs: (r) => [rn([2, 3, 5, 4])(r)], run: op1(globalAvgPool2d) },
  // ---- attention ----
  {
    name: 'attention causal [2, 3, 17, 8]', inputs: (r) => [rn([2, 3, 17, 8])(r), rn([2, 3, 17, 8])(r), rn([2, 3, 17, 8])(r)],
    run: (q, k, v) => ({ out: scaledDotProductAttention(q, k, v, { causal: true }) }),
  },
  {
    name: 'attention full, Tq != Tk, Dv != D', inputs: (r) => [rn([3, 5, 6])(r), rn([3, 9, 6])(r), rn([3, 9, 4])(r)],
    run: (q, k, v) => ({ out: scaledDotProductAttention(q, k, v) }),
  },
  {
    name: 'attention causal with dropout', inputs: (r) => [rn([2, 12, 8])(r), rn([2, 12, 8])(r), rn([2, 12, 8])(r)],
    run: (q, k, v) => ({ out: scaledDotProductAttention(q, k, v, { causal: true, dropout: { p: 0.25, rng: new Rng(5) } }) }),
  },
  {
    name: 'attention, frozen query', inputs: (r) => [rn([2, 7, 4])(r), rn([2, 7, 4])(r), rn([2, 7, 4])(r)],
    run: (q, k, v) => ({ out: scaledDotProductAttention(q, k, v, { causal: true }) }), frozen: [0],
  },
  {
    name: 'attention gpt2-like [2, 4, 64, 16] (multi-threaded gemm shapes)',
    inputs: (r) => [rn([2, 4, 64, 16])(r), rn([2, 4, 64, 16])(r), rn([2, 4, 64, 16])(r)],
    run: (q, k, v) => ({ out: scaledDotProductAttention(q, k, v, { causal: true }) }),
  },
  {
    name: 'attention grouped-query causal, 6 heads over 2 kv heads [2, 6, 17, 8]',
    inputs: (r) => [rn([2, 6, 17, 8])(r), rn([2, 2, 17, 8])(r), rn([2, 2, 17, 8])(r)],
    run: (q, k, v) => ({ out: scaledDotProductAttention(q, k, v, { causal: true }) }),
  },
  {
    name: 'attention grouped-query full with dropout, one kv head, Tq != Tk, Dv != D',
    inputs: (r) => [rn([2, 4, 5, 6])(r), rn([2, 1, 9, 6])(r), rn([2, 1, 9, 4])(r)],
    run: (q, k, v) => ({ out: scaledDotProductAttention(q, k, v, { dropout: { p: 0.25, rng: new Rng(6) } }) }),
  },
  {
    name: 'attention grouped-query smollm2-like, 9 heads over 3 [1, 9, 64, 16], frozen query',
    inputs: (r) => [rn([1, 9, 64, 16])(r), rn([1, 3, 64, 16])(r), rn([1, 3, 64, 16])(r)],
    run: (q, k, v) => ({ out: scaledDotProductAttention(q, k, v, { causal: true }) }), frozen: [0],
  },
  // ---- normalisation ----
  {
    name: 'batchNorm training [N, C, H, W]', inputs: (r) => [rn([4, 3, 5, 5], 2)(r), uniform([3], r, 0.5, 1.5, f32), rn([3])(r)],
    run: (x, g, b) => {
      const st = bnState(3, true);
      return { out: batchNorm(x, g, b, st), extras: [st.runningMean, st.runningVar] };
    },
  },
  {
    name: 'batchNorm training [N, C]', inputs: (r) => [rn([8, 5], 2)(r), uniform([5], r, 0.5, 1.5, f32), rn([5])(r)],
    run: (x, g, b) => {
      const st = bnState(5, true);
      return { out: batchNorm(x, g, b, st), extras: [st.runningMean, st.runningVar] };
    },
  },
  {
    name: 'batchNorm eval', inputs: (r) => [rn([4, 3, 2, 2])(r), uniform([3], r, 0.5, 1.5, f32), rn([3])(r)],
    run: (x, g, b) => {
      const st = bnState(3, false);
      return { out: batchNorm(x, g, b, st), extras: [st.runningMean, st.runningVar] };
    },
  },
  { name: 'layerNorm', inputs: (r) => [rn([6, 16], 2)(r), uniform([16], r, 0.5, 1.5, f32), rn([16])(r)], run: (x, g, b) => ({ out: layerNorm(x, g, b) }) },
  // ---- the Llama family: RMSNorm, rotary embeddings, the SiLU-gated product ----
  { name: 'rmsNorm', inputs: (r) => [rn([6, 16], 2)(r), uniform([16], r, 0.5, 1.5, f32)], run: (x, w) => ({ out: rmsNorm(x, w, 1e-6) }) },
  { name: 'rmsNorm long rows [4, 7, 576]', inputs: (r) => [rn([4, 7, 576])(r), uniform([576], r, 0.5, 1.5, f32)], run: (x, w) => ({ out: rmsNorm(x, w, 1e-5) }) },
  { name: 'rmsNorm frozen weight', inputs: (r) => [rn([5, 8])(r), uniform([8], r, 0.5, 1.5, f32)], run: (x, w) => ({ out: rmsNorm(x, w, 1e-6) }), frozen: [1] },
  { name: 'rotary [2, 3, 17, 8]', inputs: (r) => [rn([2, 3, 17, 8])(r), ...rotaryTables(17, 8)], run: (x, c, s) => ({ out: rotary(x, c, s) }), frozen: [1, 2] },
  { name: 'rotary [2, 9, 64, 64]', inputs: (r) => [rn([2, 9, 64, 64])(r), ...rotaryTables(64, 64)], run: (x, c, s) => ({ out: rotary(x, c, s) }), frozen: [1, 2] },
  { name: 'siluMul', inputs: (r) => [rn([7, 9], 3)(r), rn([7, 9])(r)], run: op2(siluMul) },
  { name: 'siluMul [4, 32, 1536]', inputs: (r) => [rn([4, 32, 1536], 3)(r), rn([4, 32, 1536])(r)], run: op2(siluMul) },
  { name: 'siluMul frozen up', inputs: (r) => [rn([5, 6], 3)(r), rn([5, 6])(r)], run: op2(siluMul), frozen: [1] },
  // ---- embedding, dropout ----
  { name: 'embedding repeated ids', inputs: (r) => [rn([10, 8])(r)], run: op1((t) => embedding(t, labels([3, 1, 3, 9, 0, 3, 1]), [7])) },
  { name: 'dropout fixed seed', inputs: (r) => [rn([9, 11])(r)], run: op1((x) => dropout(x, 0.4, new Rng(77))) },
];

interface Result {
  out: Float32Array;
  grads: (Float32Array | null)[];
  extras: Float32Array[];
}

async function runOn(name: BackendName, c: Case): Promise<Result> {
  const b = setBackend(name);
  assert.equal(b.name, name);
  caseDevice = b.device;
  // Made on the cpu, then copied to the backend's device (a no-op on the cpu).
  const inputs = c.inputs(new Rng(2024)).map((t) => (b.device === CPU ? t : Tensor.from(t.values(), t.shape, t.dtype, b.device)));
  inputs.forEach((t, i) => {
    assert.equal(t.dtype, 'float32');
    t.requiresGrad = !(c.frozen ?? []).includes(i);
  });
  const { out, extras = [] } = c.run(...inputs);
  const result: Result = { out: Float32Array.from(await out.read()), grads: [], extras: [] };
  for (const e of extras) result.extras.push(Float32Array.from(await e.read()));
  const rng = new Rng(99);
  const R = new Float32Array(out.size);
  for (let i = 0; i < R.length; i++) R[i] = rng.normal();
  backward(out, b.device === CPU ? R : deviceMemory(b.device).fromHost(R));
  for (const t of inputs) result.grads.push(t.grad ? Float32Array.from(await t.grad.read()) : null);
  caseDevice = CPU;
  return result;
}

/** rtol 1e-4, atol 1e-5 × the largest magnitude (helpers/tolerance.ts; the op suite holds float32 backends to the same). */
const tolerances = parityTolerance;

const { available, missing } = backendList();

describe('backend parity with the reference (float32, forward and gradients)', () => {
  after(closeDeviceBackends);
  for (const m of missing) it(`${m.name}: skipped, unavailable here`, { skip: m.reason }, () => {});
  for (const b of available.filter((x) => x.name !== REFERENCE)) {
    for (const c of CASES) {
      it(`${c.name} [${b.name}]`, async () => {
        // A GPU backend whose device has subgroups runs a case with row reductions on both of its
        // paths (subgroup operations, then workgroup memory: wgsl_reduce.ts).
        const stream = (b as Partial<WebGpuBackend>).stream;
        const withSubgroups = stream?.subgroups ?? false;
        try {
          const ref = await runOn(REFERENCE, c);
          for (const subgroups of withSubgroups ? [true, false] : [false]) {
            stream?.setSubgroups(subgroups);
            const reductionsBefore = stream?.rowReductions ?? 0;
            const got = await runOn(b.name, c);
            const path = withSubgroups ? ` (${subgroups ? 'subgroups' : 'workgroup memory'})` : '';
            assertClose(got.out, ref.out, { ...tolerances(ref.out), msg: `${c.name}${path}: forward` });
            ref.grads.forEach((g, i) => {
              const n = got.grads[i];
              if (g === null || n === null) {
                assert.equal(n === null, g === null, `${c.name}: input ${i} has a gradient on one backend only`);
                return;
              }
              assertClose(n, g, { ...tolerances(g), msg: `${c.name}${path}: gradient of input ${i}` });
            });
            ref.extras.forEach((e, i) => assertClose(got.extras[i], e, { ...tolerances(e), msg: `${c.name}${path}: extra buffer ${i}` }));
            if ((stream?.rowReductions ?? 0) === reductionsBefore) break; // nothing here differs between the paths
          }
        } finally {
          stream?.setSubgroups(withSubgroups);
          setBackend(REFERENCE);
        }
      });
    }
  }
});
