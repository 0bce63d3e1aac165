/**
 * bench:gpu — the webgpu backend on this machine's adapter: GEMM GFLOP/s at 1024³ and 4096³ (each
 * WGSL kernel: the 64×64 tiled one and the register-blocked 128×128 one, and which `auto` takes;
 * timed to the GPU's completion), MNIST-MLP (784-128-10, batch 64) training steps per second
 * through the op layer with the arena on the GPU (forward, backward, SGD; one asynchronous loss
 * read per step, which is also what submits the step), and the MNIST CNN's training steps per
 * second and single convolutions' forward and backward times with each convolution kernel
 * (direct, implicit GEMM, and `auto`'s choice per pass). The cpu backend's figures
 * are measured beside it. On a software adapter (SwiftShader) the bench only checks that it runs:
 * it uses small sizes and its figures say nothing about a GPU.
 *
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json npm run bench:gpu   (no GPU)
 *   npm run bench:gpu                                                               (a GPU)
 *   node dist/bench/gpu.js mlp --mlp-steps 40                                       (some parts: gemm, mlp, conv)
 *
 * The MLP line also says how many of the step's GPU buffers the caching allocator served from its
 * cache (hits) and how many it created (misses).
 */
import { SGD } from '../src/nn/index.js';
import { buildCnn } from '../src/nn/models/cnn.js';
import { buildMlp } from '../src/nn/models/mlp.js';
import type { Module } from '../src/nn/module.js';
import { backward } from '../src/tensor/autograd.js';
import type { Conv2dGeometry } from '../src/tensor/backend.js';
import { closeWebGpu, loadWebGpuBackend, type ConvKernelChoice, type GemmKernelChoice, type WebGpuBackend } from '../src/tensor/backends/webgpu/index.js';
import { deviceMemory, type DeviceBuffer } from '../src/tensor/storage.js';
import { backend } from '../src/tensor/dispatch.js';
import { crossEntropy } from '../src/tensor/ops/loss.js';
import { Tensor } from '../src/tensor/tensor.js';
import { measureGemm } from '../src/train/engine/device.js';
import { Rng } from '../src/util/rng.js';

/** Training steps per second of `model` on `device` over one fixed batch (forward, backward, SGD; one awaited loss read per step). */
async function stepsPerSecond(model: Module, device: string, input: number[], steps: number): Promise<number> {
  if (device !== 'cpu') model.to(device);
  const opt = new SGD(model.arena(), { lr: 0.01, momentum: 0.9 });
  const rng = new Rng(3);
  const batch = input[0];
  const x = Tensor.from(Float32Array.from({ length: input.reduce((a, b) => a * b, 1) }, () => rng.uniform()), input, 'float32', device);
  const labels = Int32Array.from({ length: batch }, () => rng.int(10));
  const step = async (): Promise<void> => {
    model.zeroGrad();
    const loss = crossEntropy(model.forward(x), labels);
    backward(loss);
    opt.step();
    await loss.read();
  };
  await step();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await step();
  return steps / ((performance.now() - t0) / 1000);
}

/** Milliseconds of one convolution forward and of its backward (data and weights), to the GPU's completion. */
async function convMs(gpu: WebGpuBackend, g: Conv2dGeometry, reps: number): Promise<[number, number]> {
  const memory = deviceMemory('webgpu');
  const buf = (n: number): DeviceBuffer => memory.alloc('float32', n).buffer;
  const [nx, nw, ny] = [g.batch * g.inC * g.inH * g.inW, g.outC * g.inC * g.kH * g.kW, g.batch * g.outC * g.outH * g.outW];
  const [x, w, b, y, gx, gw] = [buf(nx), buf(nw), buf(g.outC), buf(ny), buf(nx), buf(nw)];
  const time = async (fn: () => void): Promise<number> => {
    fn();
    await gpu.stream.finish();
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) fn();
    await gpu.stream.finish();
    return (performance.now() - t0) / reps;
  };
  return [await time(() => gpu.conv2d(g, x, w, b, y)), await time(() => gpu.conv2dBackward(g, x, w, y, gx, gw, null, true))];
}

/** A square convolution's geometry. */
function conv(batch: number, inC: number, side: number, outC: number, k: number, stride: number, pad: number): Conv2dGeometry {
  const out = Math.floor((side + 2 * pad - k) / stride) + 1;
  return { batch, inC, inH: side, inW: side, outC, kH: k, kW: k, strideH: stride, strideW: stride, padH: pad, padW: pad, outH: out, outW: out };
}

const mlp = (): Module => buildMlp({ type: 'mlp', inputDim: 784, hidden: 128, out: 10 }, 1);
const cnn = (): Module => buildCnn({ type: 'cnn', inChannels: 1, inputSize: 28, out: 10 }, 1);

/** The parts to run (all without arguments) and the MLP's timed steps (`--mlp-steps N`). */
function parseArgs(argv: string[]): { parts: Set<string>; mlpSteps: number | null } {
  const at = argv.indexOf('--mlp-steps');
  const mlpSteps = at >= 0 ? Number(argv[at + 1]) : null;
  if (mlpSteps !== null && !(Number.isInteger(mlpSteps) && mlpSteps > 0)) throw new Error(`bench:gpu: --mlp-steps wants a positive integer, got ${argv[at + 1]}`);
  const names = argv.filter((a, i) => i !== at && i !== at + 1);
  for (const n of names) if (!['gemm', 'mlp', 'conv'].includes(n)) throw new Error(`bench:gpu: unknown part "${n}" (gemm, mlp, conv)`);
  return { parts: new Set(names.length > 0 ? names : ['gemm', 'mlp', 'conv']), mlpSteps };
}

async function main(): Promise<void> {
  const { parts, mlpSteps } = parseArgs(process.argv.slice(2));
  const load = await loadWebGpuBackend();
  if (!load.backend || !load.adapter) {
    process.stderr.write(`bench:gpu: ${load.reason}\n`);
    process.exitCode = 1;
    return;
  }
  const gpu: WebGpuBackend = load.backend;
  const kernels: GemmKernelChoice[] = ['tiled64', 'blocked128'];
  const software = load.adapter.software;
  process.stdout.write(`adapter: ${load.backend.adapterName} (${software ? 'software: figures only check that it runs' : 'hardware'})\n`);
  const sizes = !parts.has('gemm') ? [] : software ? [[256, 2]] : [[1024, 20], [4096, 5]];
  for (const [n, reps] of sizes) {
    const figures: string[] = [];
    for (const kernel of kernels) {
      load.backend.gemmKernel = kernel;
      figures.push(`${kernel} ${(await measureGemm(gpu, n, reps)).toFixed(1)}`);
    }
    load.backend.gemmKernel = 'auto';
    const auto = load.backend.stream.dispatches.get('gemmBlocked') ?? 0;
    await measureGemm(gpu, n, 1);
    const autoTakes = (load.backend.stream.dispatches.get('gemmBlocked') ?? 0) > auto ? 'blocked128' : 'tiled64';
    const c = await measureGemm(backend(), n, Math.max(1, Math.floor(reps / 4)));
    process.stdout.write(`gemm ${n}³: webgpu ${figures.join(', ')} GFLOP/s (auto takes ${autoTakes}), cpu (${backend().name}) ${c.toFixed(1)} GFLOP/s\n`);
  }
  if (parts.has('mlp')) {
    const steps = mlpSteps ?? (software ? 5 : 200);
    const stats = (): { hits: number; misses: number } => load.backend!.allocator.stats();
    const before = stats();
    const gs = await stepsPerSecond(mlp(), 'webgpu', [64, 784], steps);
    const after = stats();
    const cs = await stepsPerSecond(mlp(), 'cpu', [64, 784], steps);
    process.stdout.write(`mnist mlp 784-128-10 batch 64: webgpu ${gs.toFixed(1)} steps/s (${steps} steps; allocator ${after.hits - before.hits} hits, ${after.misses - before.misses} misses), cpu (${backend().name}) ${cs.toFixed(1)} steps/s\n`);
  }
  if (!parts.has('conv')) {
    closeWebGpu();
    return;
  }
  const convKernels: ConvKernelChoice[] = ['direct', 'implicitGemm', 'auto'];
  const b = software ? 8 : 64;
  const layers: [string, Conv2dGeometry][] = [
    ['cnn conv1 1→32 3×3 28²', conv(b, 1, 28, 32, 3, 1, 1)], ['cnn conv2 32→64 3×3 14²', conv(b, 32, 14, 64, 3, 1, 1)],
    ['resnet stem 3→64 7×7 s2 32²', conv(b, 3, 32, 64, 7, 2, 3)], ['resnet 64→64 3×3 8²', conv(b, 64, 8, 64, 3, 1, 1)],
  ];
  for (const [name, g] of layers) {
    const figures: string[] = [];
    for (const kernel of convKernels) {
      load.backend.convKernel = kernel;
      const [f, bw] = await convMs(load.backend, g, software ? 2 : 20);
      figures.push(`${kernel} ${f.toFixed(1)} + ${bw.toFixed(1)}`);
    }
    process.stdout.write(`conv ${name} batch ${b} (forward + backward ms): ${figures.join(', ')}\n`);
  }
  const [cnnBatch, cnnSteps] = software ? [8, 2] : [64, 50];
  const convFigures: string[] = [];
  for (const kernel of convKernels) {
    load.backend.convKernel = kernel;
    convFigures.push(`${kernel} ${(await stepsPerSecond(cnn(), 'webgpu', [cnnBatch, 1, 28, 28], cnnSteps)).toFixed(2)}`);
  }
  load.backend.convKernel = 'auto';
  const cc = await stepsPerSecond(cnn(), 'cpu', [cnnBatch, 1, 28, 28], cnnSteps);
  process.stdout.write(`mnist cnn (conv 32, conv 64, dense 128) batch ${cnnBatch}: webgpu ${convFigures.join(', ')} steps/s, cpu (${backend().name}) ${cc.toFixed(2)} steps/s\n`);
  closeWebGpu();
}

await main();
