/**
 * bench:gpu — the webgpu backend on this machine's adapter: GEMM GFLOP/s at 1024³ and 4096³ (each
 * WGSL kernel: the 64×64 tiled one and the register-blocked 128×128 one, and which `auto` takes;
 * timed to the GPU's completion), and MNIST-MLP (784-128-10, batch 64) training
 * steps per second through the op layer with the arena on the GPU (forward, backward, SGD; one
 * asynchronous loss read per step, which is also what submits the step). The cpu backend's figures
 * are measured beside it. On a software adapter (SwiftShader) the bench only checks that it runs:
 * it uses small sizes and its figures say nothing about a GPU.
 *
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json npm run bench:gpu   (no GPU)
 *   npm run bench:gpu                                                               (a GPU)
 */
import { SGD } from '../src/nn/index.js';
import { buildMlp } from '../src/nn/models/mlp.js';
import { backward } from '../src/tensor/autograd.js';
import type { Backend } from '../src/tensor/backend.js';
import { closeWebGpu, loadWebGpuBackend, type GemmKernelChoice } from '../src/tensor/backends/webgpu/index.js';
import { backend } from '../src/tensor/dispatch.js';
import { crossEntropy } from '../src/tensor/ops/loss.js';
import { Tensor } from '../src/tensor/tensor.js';
import { measureGemm } from '../src/train/device.js';
import { Rng } from '../src/util/rng.js';

async function mlpStepsPerSecond(device: string, steps: number): Promise<number> {
  const model = buildMlp({ type: 'mlp', inputDim: 784, hidden: 128, out: 10 }, 1);
  if (device !== 'cpu') model.to(device);
  const opt = new SGD(model.arena(), { lr: 0.01, momentum: 0.9 });
  const rng = new Rng(3);
  const x = Tensor.from(Float32Array.from({ length: 64 * 784 }, () => rng.uniform()), [64, 784], 'float32', device);
  const labels = Int32Array.from({ length: 64 }, () => rng.int(10));
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

async function main(): Promise<void> {
  const load = await loadWebGpuBackend();
  if (!load.backend || !load.adapter) {
    process.stderr.write(`bench:gpu: ${load.reason}\n`);
    process.exitCode = 1;
    return;
  }
  const gpu: Backend = load.backend;
  const kernels: GemmKernelChoice[] = ['tiled64', 'blocked128'];
  const software = load.adapter.software;
  process.stdout.write(`adapter: ${load.backend.adapterName} (${software ? 'software: figures only check that it runs' : 'hardware'})\n`);
  const sizes = software ? [[256, 2]] : [[1024, 20], [4096, 5]];
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
  const steps = software ? 5 : 200;
  const gs = await mlpStepsPerSecond('webgpu', steps);
  const cs = await mlpStepsPerSecond('cpu', steps);
  process.stdout.write(`mnist mlp 784-128-10 batch 64: webgpu ${gs.toFixed(1)} steps/s, cpu (${backend().name}) ${cs.toFixed(1)} steps/s\n`);
  closeWebGpu();
}

await main();
