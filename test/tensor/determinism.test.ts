/**
 * Reproducibility on the current backend (SMOLCLUSTER_BACKEND, or native when built): the same
 * seeded computation — init, dropout, forward, backward, a few SGD updates — run twice gives
 * bitwise-identical losses, parameters and gradients.
 */
import { describe, it } from '../helpers/per_backend.js';
import {
  Tensor, backend, backward, conv2d, crossEntropy, dropout, flatten, gelu, layerNorm, linear, maxPool2d, noGrad,
  relu, type HostArray as Buf,
} from '../../src/tensor/index.js';
import { Rng, assertBitwiseEqual, leaf } from '../helpers/tensors.js';

interface Trace {
  losses: number[];
  params: Buf[];
  grads: Buf[];
  logits: Buf[];
}

/** A few SGD steps; gradients are zeroed between steps, the last step's are kept. */
function train(build: (rng: Rng) => { params: Tensor[]; step: (dropRng: Rng) => { loss: Tensor; logits: Tensor } }): Trace {
  const rng = new Rng(1234);
  const { params, step } = build(rng);
  const dropRng = new Rng(4321);
  const trace: Trace = { losses: [], params: [], grads: [], logits: [] };
  for (let s = 0; s < 3; s++) {
    for (const p of params) p.gradValues()?.fill(0);
    const { loss, logits } = step(dropRng);
    trace.losses.push(loss.item());
    trace.logits.push(logits.values().slice());
    backward(loss);
    noGrad(() => {
      for (const p of params) backend().axpy(-0.1, p.grad!.buffer, p.buffer);
    });
  }
  trace.params = params.map((p) => p.values().slice());
  trace.grads = params.map((p) => p.gradValues()!.slice());
  return trace;
}

function mlp(rng: Rng): { params: Tensor[]; step: (dropRng: Rng) => { loss: Tensor; logits: Tensor } } {
  const w1 = leaf(Tensor.randn([32, 20], rng, 'float32', 0.2));
  const b1 = leaf(Tensor.randn([32], rng, 'float32', 0.1));
  const g = leaf(Tensor.full([32], 1, 'float32'));
  const be = leaf(Tensor.zeros([32], 'float32'));
  const w2 = leaf(Tensor.randn([10, 32], rng, 'float32', 0.2));
  const b2 = leaf(Tensor.zeros([10], 'float32'));
  const x = Tensor.randn([16, 20], rng, 'float32');
  const y = Int32Array.from({ length: 16 }, () => rng.int(10));
  y[3] = -1;
  return {
    params: [w1, b1, g, be, w2, b2],
    step: (dropRng) => {
      let h = linear(x, w1, b1);
      h = layerNorm(h, g, be);
      h = gelu(h);
      h = dropout(h, 0.2, dropRng);
      const logits = linear(h, w2, b2);
      return { loss: crossEntropy(logits, y), logits };
    },
  };
}

function cnn(rng: Rng): { params: Tensor[]; step: (dropRng: Rng) => { loss: Tensor; logits: Tensor } } {
  const wc = leaf(Tensor.randn([4, 2, 3, 3], rng, 'float32', 0.3));
  const bc = leaf(Tensor.randn([4], rng, 'float32', 0.1));
  const wf = leaf(Tensor.randn([5, 4 * 4 * 4], rng, 'float32', 0.1));
  const bf = leaf(Tensor.zeros([5], 'float32'));
  const x = Tensor.randn([6, 2, 8, 8], rng, 'float32');
  const y = Int32Array.from({ length: 6 }, () => rng.int(5));
  return {
    params: [wc, bc, wf, bf],
    step: (dropRng) => {
      let h = relu(conv2d(x, wc, bc, { padding: 1 }));
      h = maxPool2d(h, { kernel: 2 });
      h = dropout(flatten(h), 0.1, dropRng);
      const logits = linear(h, wf, bf);
      return { loss: crossEntropy(logits, y), logits };
    },
  };
}

function assertSameTrace(a: Trace, b: Trace): void {
  assertBitwiseEqual(a.losses, b.losses, 'losses');
  a.logits.forEach((l, i) => assertBitwiseEqual(l, b.logits[i], `logits of step ${i}`));
  a.params.forEach((p, i) => assertBitwiseEqual(p, b.params[i], `parameter ${i}`));
  a.grads.forEach((g, i) => assertBitwiseEqual(g, b.grads[i], `gradient of parameter ${i}`));
}

describe(`determinism on the current backend`, () => {
  it(`MLP (linear, layerNorm, gelu, dropout, crossEntropy) twice: bitwise identical [${backend().name}]`, () => {
    assertSameTrace(train(mlp), train(mlp));
  });
  it(`small CNN (conv2d, relu, maxPool2d, dropout, linear) twice: bitwise identical [${backend().name}]`, () => {
    assertSameTrace(train(cnn), train(cnn));
  });
  it('a different seed gives a different result (the check is not vacuous)', () => {
    const a = train(mlp);
    const b = train((rng) => mlp(new Rng(rng.nextUint32())));
    let differs = false;
    for (let i = 0; i < a.losses.length; i++) if (a.losses[i] !== b.losses[i]) differs = true;
    if (!differs) throw new Error('different seeds gave identical losses');
  });
});
