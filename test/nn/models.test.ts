import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import { SGD, createModel, defaultSpec, describeSpec } from '../../src/nn/index.js';
import type { Module } from '../../src/nn/module.js';
import type { ModelSpec } from '../../src/nn/models/index.js';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

function batch(n: number, shape: number[], seed: number): { x: Tensor; y: Int32Array } {
  const rng = new Rng(seed);
  return { x: Tensor.randn([n, ...shape], rng), y: Int32Array.from({ length: n }, () => rng.int(10)) };
}

/** Loss before and after `steps` SGD steps on one fixed batch. */
function fit(model: Module, x: Tensor, y: Int32Array, steps: number, lr: number): number[] {
  const opt = new SGD(model.arena(), { lr, momentum: 0.9 });
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    model.zeroGrad();
    const loss = crossEntropy(model.forward(x), y);
    losses.push(loss.item());
    backward(loss);
    opt.step();
  }
  losses.push(noGrad(() => crossEntropy(model.forward(x), y).item()));
  return losses;
}

describe('models', () => {
  it('mlp with hidden [256, 128]: layers, parameter count, description, output shape', () => {
    const spec: ModelSpec = { type: 'mlp', inputDim: 784, hidden: [256, 128], out: 10 };
    const m = createModel(spec, 0);
    assert.deepEqual(
      m.namedParameters().map(([n, p]) => [n, [...p.shape]]),
      [
        ['1.weight', [256, 784]], ['1.bias', [256]],
        ['3.weight', [128, 256]], ['3.bias', [128]],
        ['5.weight', [10, 128]], ['5.bias', [10]],
      ],
    );
    assert.equal(m.numParameters(), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    assert.equal(describeSpec(spec), 'mlp 784-256-128-10');
    assert.equal(describeSpec({ type: 'mlp', inputDim: 784, hidden: 128, out: 10 }), 'mlp 784-128-10');
    const { x } = batch(5, [1, 28, 28], 1);
    assert.deepEqual(m.forward(x).shape, [5, 10]);
    // The MLP flattens any input shape whose size is inputDim.
    assert.deepEqual(m.forward(Tensor.zeros([3, 784])).shape, [3, 10]);
  });

  it('cnn: output [N, 10], forward + backward reach every parameter with finite gradients', () => {
    const spec = defaultSpec('cnn', [1, 28, 28], 10);
    assert.deepEqual(spec, { type: 'cnn', inChannels: 1, inputSize: 28, out: 10 });
    assert.equal(describeSpec(spec), 'cnn 1×28×28 → 10');
    const m = createModel(spec, 0);
    m.arena();
    const { x, y } = batch(3, [1, 28, 28], 2);
    const out = m.forward(x);
    assert.deepEqual(out.shape, [3, 10]);
    assert.ok(out.values().every(Number.isFinite));
    backward(crossEntropy(out, y));
    const arena = m.arena();
    for (const e of arena.entries) {
      const g = arena.grads.readSync().subarray(e.offset, e.offset + e.size);
      assert.ok(g.every(Number.isFinite), `non-finite gradient in ${e.name}`);
      assert.ok(g.some((v) => v !== 0), `no gradient reached ${e.name}`);
    }
  });

  it('cnn adapts to other input sizes and channel counts', () => {
    const m = createModel({ type: 'cnn', inChannels: 3, inputSize: 12, out: 4 }, 0);
    assert.deepEqual(m.namedParameters().find(([n]) => n === '7.weight')![1].shape, [128, 64 * 3 * 3]);
    assert.deepEqual(m.forward(Tensor.zeros([2, 3, 12, 12])).shape, [2, 4]);
    assert.throws(() => createModel({ type: 'cnn', inChannels: 1, inputSize: 3, out: 10 }, 0), /input size 3 is too small/);
  });

  it('defaultSpec: the mlp takes the flattened input size and 128 hidden units', () => {
    assert.deepEqual(defaultSpec('mlp', [1, 28, 28], 10), { type: 'mlp', inputDim: 784, hidden: 128, out: 10 });
  });

  it('a few SGD steps on a tiny batch reduce the loss (mlp and cnn)', () => {
    const mlp = createModel({ type: 'mlp', inputDim: 784, hidden: [64, 32], out: 10 }, 3);
    const a = batch(16, [1, 28, 28], 4);
    const mlpLoss = fit(mlp, a.x, a.y, 8, 0.05);
    assert.ok(mlpLoss[mlpLoss.length - 1] < 0.5 * mlpLoss[0], `mlp loss ${mlpLoss.map((l) => l.toFixed(3)).join(' → ')}`);

    const cnn = createModel({ type: 'cnn', inChannels: 1, inputSize: 28, out: 10 }, 3);
    const b = batch(8, [1, 28, 28], 5);
    const cnnLoss = fit(cnn, b.x, b.y, 5, 0.02);
    assert.ok(cnnLoss[cnnLoss.length - 1] < 0.8 * cnnLoss[0], `cnn loss ${cnnLoss.map((l) => l.toFixed(3)).join(' → ')}`);
  });
});
