/**
 * Models train on the webgpu device through the op layer: a model built on the host is moved to
 * the GPU (`module.to('webgpu')`: its arena becomes one GPU buffer for the parameters and one for
 * the gradients), two SGD / AdamW steps run there, and the losses (read asynchronously) and the
 * final parameters equal the js backend's on the cpu within float32 tolerance. On SwiftShader when
 * there is no GPU; skipped when the backend cannot load, except under CI=true.
 */
import { after, before, describe, it } from 'node:test';
import { AdamW, SGD } from '../../src/nn/index.js';
import { buildMlp } from '../../src/nn/models/mlp.js';
import { buildCnn } from '../../src/nn/models/cnn.js';
import { createModel, defaultSpec } from '../../src/nn/models/index.js';
import assert from 'node:assert/strict';
import type { Module } from '../../src/nn/module.js';
import type { Optimizer } from '../../src/nn/optim/optimizer.js';
import { backward } from '../../src/tensor/autograd.js';
import { closeWebGpu, type WebGpuLoad } from '../../src/tensor/backends/webgpu/index.js';
import { setBackend } from '../../src/tensor/dispatch.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { assertClose } from '../helpers/tensors.js';
import { loadWebGpuForTests } from '../helpers/webgpu.js';

interface Run {
  losses: number[];
  params: Float32Array;
  /** Every buffer (batch-norm running statistics) after the steps, in namedBuffers order. */
  buffers: Float32Array[];
  /** Eval-mode logits of the last batch after training (they read the running statistics). */
  evalLogits: Float32Array;
}

interface Family {
  name: string;
  build: () => Module;
  inputShape: number[];
  classes: number;
  optimizer: (m: Module) => Optimizer;
  /**
   * Parameters' absolute tolerance. Adam divides by √v: a parameter whose gradient is float32
   * rounding noise (summation order differs between backends) moves by up to lr per step on
   * either side, so its tolerance is a fraction of lr·steps rather than the gradient's scale.
   */
  paramAtol: number;
  /** Token ids: inputs stay host index arrays (the embedding uploads them), labels per position. */
  tokens?: { vocab: number };
  /** Also compare eval-mode logits after training (batch norm's running statistics at work). */
  checkEval?: boolean;
  /** A kernel the GPU run must have dispatched (so the case cannot pass on host work alone). */
  gpuKernel?: string;
}

const FAMILIES: Family[] = [
  {
    name: 'MNIST MLP 784-32-10, SGD with momentum',
    build: () => buildMlp({ type: 'mlp', inputDim: 784, hidden: 32, out: 10 }, 7),
    inputShape: [16, 1, 28, 28],
    classes: 10,
    optimizer: (m) => new SGD(m.arena(), { lr: 0.05, momentum: 0.9 }),
    paramAtol: 1e-5,
  },
  {
    name: 'MNIST CNN on 8×8 inputs, AdamW',
    build: () => buildCnn({ type: 'cnn', inChannels: 1, inputSize: 8, out: 5 }, 3),
    inputShape: [2, 1, 8, 8],
    classes: 5,
    optimizer: (m) => new AdamW(m.arena(), { lr: 0.01, weightDecay: 0.01 }),
    paramAtol: 1e-3,
  },
  {
    name: 'gpt2-tiny (2 layers, width 128, vocab 50, 12 tokens), SGD',
    build: () => createModel(defaultSpec('gpt2-tiny', [12], 50), 5),
    inputShape: [2, 12],
    classes: 50,
    optimizer: (m) => new SGD(m.arena(), { lr: 0.05, momentum: 0.9 }),
    paramAtol: 1e-5,
    tokens: { vocab: 50 },
  },
  {
    // The masks are drawn on each device (Philox on the GPU, the js loop on the cpu): equal losses need equal masks.
    name: 'gpt2-tiny with dropout 0.1 (residual and attention masks drawn on the GPU), SGD',
    build: () => createModel({ ...defaultSpec('gpt2-tiny', [12], 50), dropout: 0.1 } as ReturnType<typeof defaultSpec>, 5),
    inputShape: [2, 12],
    classes: 50,
    optimizer: (m) => new SGD(m.arena(), { lr: 0.05, momentum: 0.9 }),
    paramAtol: 1e-5,
    tokens: { vocab: 50 },
    gpuKernel: 'dropoutMask',
  },
  {
    name: 'bert-tiny (2 layers, width 128, vocab 40, 10 tokens), AdamW',
    build: () => createModel(defaultSpec('bert-tiny', [10], 40), 6),
    inputShape: [2, 10],
    classes: 40,
    optimizer: (m) => new AdamW(m.arena(), { lr: 0.001, weightDecay: 0.01 }),
    paramAtol: 1e-4,
    tokens: { vocab: 40 },
  },
  {
    name: 'llama-tiny (RMSNorm, rotary, SwiGLU, 4 heads over 2 kv heads, untied head; vocab 50, 12 tokens), AdamW',
    build: () => createModel(defaultSpec('llama-tiny', [12], 50), 5),
    inputShape: [2, 12],
    classes: 50,
    optimizer: (m) => new AdamW(m.arena(), { lr: 0.001, weightDecay: 0.01 }),
    paramAtol: 1e-4,
    tokens: { vocab: 50 },
    gpuKernel: 'rotary',
  },
  {
    name: 'llama-tiny with every option (Qwen2\'s q/k/v biases, Qwen3\'s q/k norms, llama3 rope scaling, tied head), SGD',
    build: () => createModel({
      ...defaultSpec('llama-tiny', [12], 50), qkvBias: true, qkNorm: true, tieEmbeddings: true,
      ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8 },
    } as ReturnType<typeof defaultSpec>, 5),
    inputShape: [2, 12],
    classes: 50,
    optimizer: (m) => new SGD(m.arena(), { lr: 0.05, momentum: 0.9 }),
    paramAtol: 1e-5,
    tokens: { vocab: 50 },
  },
  {
    name: 'resnet18 width 4 on 3×16×16 inputs (batch norm: running statistics on the GPU), SGD with momentum',
    build: () => createModel(defaultSpec('resnet18', [3, 16, 16], 4, { width: 4 }), 1),
    inputShape: [4, 3, 16, 16],
    classes: 4,
    optimizer: (m) => new SGD(m.arena(), { lr: 0.05, momentum: 0.9 }),
    paramAtol: 1e-4,
    checkEval: true,
  },
];

async function train(f: Family, device: 'cpu' | 'webgpu', steps: number): Promise<Run> {
  const model = f.build();
  if (device === 'webgpu') model.to('webgpu');
  const opt = f.optimizer(model);
  const rng = new Rng(11);
  const losses: number[] = [];
  let x: Tensor | undefined;
  for (let s = 0; s < steps; s++) {
    const n = f.inputShape.reduce((a, b) => a * b, 1);
    x = f.tokens
      ? Tensor.from(Float32Array.from({ length: n }, () => rng.int(f.tokens!.vocab)), f.inputShape)
      : Tensor.from(Float32Array.from({ length: n }, () => rng.normal()), f.inputShape, 'float32', device);
    const labels = Int32Array.from({ length: f.tokens ? n : f.inputShape[0] }, () => Math.floor(rng.uniform() * f.classes));
    model.zeroGrad();
    const loss = crossEntropy(model.forward(x), labels);
    backward(loss);
    opt.step();
    losses.push((await loss.read())[0]);
  }
  const buffers = (await model.readBuffers()).map(([, b]) => Float32Array.from(b));
  const evalLogits = f.checkEval ? Float32Array.from(await model.eval().forward(x!).read()) : new Float32Array(0);
  return { losses, params: Float32Array.from(await model.arena().params.read()), buffers, evalLogits };
}

let load: WebGpuLoad;

describe('training on the webgpu device equals training on the cpu (js)', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
    setBackend('js');
  });
  after(() => closeWebGpu());

  for (const f of FAMILIES) {
    it(`${f.name}: 2 steps, same losses and parameters`, async (t) => {
      if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
      const cpu = await train(f, 'cpu', 2);
      const dispatched = (): number => (f.gpuKernel ? load.backend!.stream.dispatches.get(f.gpuKernel) ?? 0 : 0);
      const before = dispatched();
      const gpu = await train(f, 'webgpu', 2);
      if (f.gpuKernel) assert.ok(dispatched() > before, `${f.name}: the GPU ran ${f.gpuKernel}`);
      assertClose(gpu.losses, cpu.losses, { rtol: 1e-4, atol: 1e-5, msg: `${f.name}: losses` });
      assertClose(gpu.params, cpu.params, { rtol: 1e-4, atol: f.paramAtol, msg: `${f.name}: parameters after 2 steps` });
      assert.equal(gpu.buffers.length, cpu.buffers.length);
      gpu.buffers.forEach((b, i) => assertClose(b, cpu.buffers[i], { rtol: 1e-4, atol: 1e-5, msg: `${f.name}: buffer ${i} after 2 steps` }));
      assertClose(gpu.evalLogits, cpu.evalLogits, { rtol: 1e-3, atol: 1e-4, msg: `${f.name}: eval-mode logits` });
    });
  }

  it('a model\'s buffers move with it; namedBuffers() refuses on the GPU by name, readBuffers()/writeBuffers() work', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const m = createModel(defaultSpec('resnet18', [3, 8, 8], 4, { width: 4 }), 1).to('webgpu');
    assert.ok(m.namedBufferStorages().every(([, b]) => b.device === 'webgpu'), 'every buffer is a GPU storage');
    assert.throws(() => m.namedBuffers(), /running_mean.*live on webgpu.*readBuffers/);
    const [[name, mean]] = await m.readBuffers();
    assert.match(name, /running_mean$/);
    assert.deepEqual([...mean], new Array(mean.length).fill(0), 'a fresh running mean is zeros');
    const values = (await m.readBuffers()).map(([, b]) => b.map((_, i) => i + 0.5));
    m.writeBuffers(values);
    const back = await m.readBuffers();
    back.forEach(([n, b], i) => assert.deepEqual(b, values[i], `${n} written and read back`));
  });
});
