/**
 * The workloads of bench:engine (and of bench:threads, which runs them at 1 and 2 threads): one
 * training step exactly as src/train/loop/loop.ts takes it, on a pool of MNIST-shaped samples, or one GEMM,
 * timed by the window method of bench/lib/windows.ts.
 */
import { hostKernels } from '../src/tensor/backends/cpu/storage.js';
import { type WindowPlan, type WindowResult, runWindows } from './lib/index.js';
import { type ModelSpec, createModel, makeOptimizer } from '../src/nn/index.js';
import { Tensor, backend, backward, crossEntropy } from '../src/tensor/index.js';
import { Rng } from '../src/util/rng.js';

export const IDS = ['mlp32', 'mlp256', 'cnn64', 'matmul'] as const;
export type WorkloadId = (typeof IDS)[number];

export type Workload =
  | { kind: 'train'; label: string; model: ModelSpec; batch: number }
  | { kind: 'gemm'; label: string; M: number; K: number; N: number };

const MLP: ModelSpec = { type: 'mlp', inputDim: 784, hidden: 128, out: 10 };
const CNN: ModelSpec = { type: 'cnn', inChannels: 1, inputSize: 28, out: 10 };
export const WORKLOADS: Record<WorkloadId, Workload> = {
  mlp32: { kind: 'train', label: 'MLP 784-128-10, batch 32', model: MLP, batch: 32 },
  mlp256: { kind: 'train', label: 'MLP 784-128-10, batch 256', model: MLP, batch: 256 },
  cnn64: { kind: 'train', label: 'CNN (2 conv + 2 dense), batch 64', model: CNN, batch: 64 },
  matmul: { kind: 'gemm', label: 'matmul [256,784]@[784,128]', M: 256, K: 784, N: 128 },
};
export const unitOf = (w: Workload): string => (w.kind === 'gemm' ? 'GFLOP/s' : 'samples/s');

/** Samples in the synthetic MNIST-shaped pool that training cycles through (a multiple of every batch). */
export const POOL = 4096;
export const SEED = 1234;
export const OPTIMIZER = { name: 'sgd', lr: 0.01, momentum: 0.9 } as const;

export interface Measured extends WindowResult {
  unit: string;
  /** Loss after the last step (training workloads): a sanity check that training really ran. */
  loss?: number;
}

export function uniformPool(n: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform();
  return out;
}

/** One training step exactly as src/train/loop/loop.ts takes it: zeroGrad, forward, loss, backward, step. */
function trainStepper(w: Extract<Workload, { kind: 'train' }>): { step: () => void; loss: () => number } {
  const model = createModel(w.model, SEED);
  const optimizer = makeOptimizer(model.arena(), { ...OPTIMIZER });
  const rng = new Rng(SEED);
  const dim = 28 * 28;
  const inputs = uniformPool(POOL * dim, rng);
  const labels = new Int32Array(POOL);
  for (let i = 0; i < POOL; i++) labels[i] = Math.floor(rng.uniform() * 10);
  const batches = POOL / w.batch;
  let i = 0;
  let last = NaN;
  const step = (): void => {
    const start = (i++ % batches) * w.batch;
    model.zeroGrad();
    const x = Tensor.fromHost(inputs.subarray(start * dim, (start + w.batch) * dim), [w.batch, 1, 28, 28]);
    const loss = crossEntropy(model.forward(x), labels.subarray(start, start + w.batch));
    backward(loss);
    optimizer.step();
    last = loss.item();
  };
  return { step, loss: () => last };
}

/** One workload's step and the units it does (samples, or GFLOP for the GEMM), on the current backend. */
export function stepperOf(id: WorkloadId): { step: () => void; units: number; loss?: () => number } {
  const w = WORKLOADS[id];
  if (w.kind === 'gemm') {
    const rng = new Rng(SEED);
    const A = uniformPool(w.M * w.K, rng);
    const B = uniformPool(w.K * w.N, rng);
    const C = new Float32Array(w.M * w.N);
    const k = hostKernels(backend());
    return { step: () => k.gemm(false, false, w.M, w.N, w.K, 1, A, 0, B, 0, 0, C, 0, 1), units: (2 * w.M * w.N * w.K) / 1e9 };
  }
  const t = trainStepper(w);
  return { step: t.step, units: w.batch, loss: t.loss };
}

/** Times one workload on the current backend. */
export function measure(id: WorkloadId, plan: WindowPlan): Measured {
  const s = stepperOf(id);
  const r = runWindows(s.step, s.units, plan);
  return { ...r, unit: unitOf(WORKLOADS[id]), ...(s.loss ? { loss: s.loss() } : {}) };
}
