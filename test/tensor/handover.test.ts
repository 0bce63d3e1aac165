/**
 * Handing an activation over to its last reader (src/tensor/handover.ts): under bf16 a linear that
 * takes a LayerNorm's output with `lastUse` keeps a bf16 copy for its backward and gives the
 * float32 values back (attention likewise for q, k, v; conv2d for ReLU, pooling and BatchNorm+ReLU
 * outputs, the last through a bf16 stand-in for its mask), measured as the bytes the step's
 * recycler holds after the forward. The cross-entropy writes its probabilities over handed-over logits of a
 * linear head, in either precision.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import {
  Tensor, add, backward, batchNormRelu, noGrad, conv2d, crossEntropy, exp, lastUse, layerNorm, linear, maxPool2dRelu, permute, relu,
  scaledDotProductAttention, withComputePrecision, type BatchNormState, type Precision,
} from '../../src/tensor/index.js';
import { BufferRecycler } from '../../src/tensor/recycler.js';
import { buildCnn } from '../../src/nn/models/cnn.js';
import { buildResNet, type ResNetSpec } from '../../src/nn/models/resnet.js';
import { fusedPair } from '../../src/nn/layers/fusion.js';
import type { Module } from '../../src/nn/module.js';
import { Rng, randn } from '../helpers/tensors.js';

const [M, C, K] = [64, 48, 3];

function leaf(shape: number[], rng: Rng): Tensor {
  const t = randn(shape, rng, 'float32');
  t.requiresGrad = true;
  return t;
}

/** K blocks h ← linear(layerNorm(h), W_k): the bytes held after the forward, and every gradient. */
function chain(precision: Precision, handOver: boolean): { heldBytes: number; grads: number[][] } {
  const rng = new Rng(11);
  const x = leaf([M, C], rng);
  const params = Array.from({ length: K }, () => [leaf([C, C], rng), leaf([C], rng), leaf([C], rng)] as const);
  const recycler = new BufferRecycler();
  let heldBytes = 0;
  withComputePrecision(precision, () => recycler.run(() => {
    let h = x;
    for (const [w, gamma, beta] of params) {
      const normed = layerNorm(h, gamma, beta);
      h = linear(handOver ? lastUse(normed) : normed, w, null);
    }
    heldBytes = recycler.bytesLent;
    backward(h, new Float32Array(h.size).fill(1));
  }));
  return { heldBytes, grads: [x, ...params.flat()].map((t) => [...t.gradValues()!]) };
}

/** A fresh training-mode BatchNorm state for C channels. */
function bnState(C: number): BatchNormState {
  const ones = Tensor.full([C], 1);
  return { runningMean: Tensor.zeros([C]).storage, runningVar: ones.storage, momentum: 0.1, eps: 1e-5, training: true };
}

/**
 * K blocks h ← conv2d(act(h), W_k) over [N, C, S, S] maps, act one of BatchNorm+ReLU (reads the
 * sign of its output), ReLU (reads its input) or ReLU+max-pool (reads its argmax).
 */
function convChain(precision: Precision, handOver: boolean, act: 'bnRelu' | 'relu' | 'pool'): { heldBytes: number; grads: number[][]; acts: Tensor[] } {
  const [N, C, S] = [2, 4, 8];
  const rng = new Rng(13);
  const x = leaf([N, C, S, S], rng);
  const params = Array.from({ length: K }, () => [leaf([C, C, 3, 3], rng), leaf([C], rng), leaf([C], rng)] as const);
  const recycler = new BufferRecycler();
  const acts: Tensor[] = [];
  let heldBytes = 0;
  withComputePrecision(precision, () => recycler.run(() => {
    let h = x;
    for (const [w, gamma, beta] of params) {
      const a = act === 'bnRelu' ? batchNormRelu(h, gamma, beta, bnState(C))
        : act === 'relu' ? relu(h)
          : maxPool2dRelu(h, { kernel: 1 });
      acts.push(a);
      h = conv2d(handOver ? lastUse(a) : a, w, null, { padding: 1 });
    }
    heldBytes = recycler.bytesLent;
    backward(h, new Float32Array(h.size).fill(1));
  }));
  const used = act === 'bnRelu' ? [x, ...params.flat()] : [x, ...params.map(([w]) => w)];
  return { heldBytes, grads: used.map((t) => [...t.gradValues()!]), acts };
}

/** A model's step under a recycler: the bytes held after the forward, and every parameter gradient. */
function modelStep(model: Module, run: (x: Tensor) => Tensor, x: Tensor, precision: Precision): { heldBytes: number; grads: number[][] } {
  const recycler = new BufferRecycler();
  let heldBytes = 0;
  withComputePrecision(precision, () => recycler.run(() => {
    const y = run(x);
    heldBytes = recycler.bytesLent;
    backward(y, new Float32Array(y.size).fill(1));
  }));
  return { heldBytes, grads: model.parameters().map((p) => [...p.gradValues()!]) };
}

describe('handover', () => {
  it('under bf16 a linear keeps a bf16 copy of a handed-over input: the step holds 2 bytes an element less for each', () => {
    const fp32 = chain('fp32', true);
    const bf16 = chain('bf16', false);
    const handed = chain('bf16', true);
    // Without the hand-over the graph keeps each float32 input (the backward rounds it again).
    assert.equal(bf16.heldBytes, fp32.heldBytes);
    // With it, each linear's saved input is its bf16 copy: half of the float32 one.
    assert.equal(fp32.heldBytes - handed.heldBytes, K * M * C * (4 - 2));
    // The backward reads the same bf16 values either way: the same gradients, bit for bit.
    assert.deepEqual(handed.grads, bf16.grads);
  });

  it('under bf16 attention keeps bf16 copies of handed-over q, k, v (fresh permutes): 2 bytes an element less for each', () => {
    const shape = [2, 8, 3, 16]; // permuted to [2, 3, 8, 16]
    const n = 2 * 8 * 3 * 16;
    const run = (precision: Precision, handOver: boolean): { heldBytes: number; grads: number[][] } => {
      const rng = new Rng(5);
      const xs = [leaf(shape, rng), leaf(shape, rng), leaf(shape, rng)];
      const recycler = new BufferRecycler();
      let heldBytes = 0;
      withComputePrecision(precision, () => recycler.run(() => {
        const [q, k, v] = xs.map((x) => permute(x, [0, 2, 1, 3]));
        const mark = (t: Tensor): Tensor => (handOver ? lastUse(t) : t);
        const y = scaledDotProductAttention(mark(q), mark(k), mark(v), { causal: true });
        heldBytes = recycler.bytesLent;
        backward(y, new Float32Array(y.size).fill(1));
      }));
      return { heldBytes, grads: xs.map((t) => [...t.gradValues()!]) };
    };
    const [plain, handed] = [run('bf16', false), run('bf16', true)];
    assert.equal(plain.heldBytes - handed.heldBytes, 3 * n * (4 - 2));
    assert.deepEqual(handed.grads, plain.grads);
  });

  for (const act of ['bnRelu', 'relu', 'pool'] as const) {
    it(`under bf16 conv2d keeps a bf16 copy of a handed-over ${act} output: 2 bytes an element less for each, the same gradients`, () => {
      const n = 2 * 4 * 8 * 8;
      const fp32 = convChain('fp32', true, act);
      const bf16 = convChain('bf16', false, act);
      const handed = convChain('bf16', true, act);
      assert.equal(bf16.heldBytes, fp32.heldBytes);
      assert.equal(fp32.heldBytes - handed.heldBytes, K * n * (4 - 2));
      // The backward reads the bf16 values the forward rounded (and BatchNorm+ReLU masks by their sign).
      assert.deepEqual(handed.grads, bf16.grads);
      // float32 keeps every value readable; under bf16 the handed-over ones are gone.
      assert.equal(fp32.acts[0].values().length, n);
      for (const a of handed.acts) assert.throws(() => a.values(), /released after 'conv2d' took them as their last use/);
    });
  }

  it('a BatchNorm+ReLU output handed to a linear (which keeps no stand-in for the mask) keeps its values', () => {
    const rng = new Rng(8);
    const [x, w, gamma, beta] = [leaf([4, 8], rng), leaf([8, 8], rng), leaf([8], rng), leaf([8], rng)];
    withComputePrecision('bf16', () => {
      const a = batchNormRelu(x, gamma, beta, bnState(8));
      const y = linear(lastUse(a), w, null);
      assert.equal(a.values().length, 32);
      backward(y, new Float32Array(y.size).fill(1));
    });
    assert.ok(gamma.gradValues()!.some((g) => g !== 0));
  });

  it('the MNIST CNN hands its second conv its pooled input (Sequential): the same gradients as without', () => {
    const spec = { type: 'cnn' as const, inChannels: 1, inputSize: 8, out: 3 };
    const x = randn([2, 1, 8, 8], new Rng(9), 'float32');
    // The same layers, run without any hand-over: the reference.
    const plain = (m: Module) => (v: Tensor): Tensor => {
      const l = (m as ReturnType<typeof buildCnn>).layers;
      let y = fusedPair(l[1], l[2])!(l[0].forward(v));
      y = fusedPair(l[4], l[5])!(l[3].forward(y));
      for (const layer of l.slice(6)) y = layer.forward(y);
      return y;
    };
    const fp32Model = buildCnn(spec, 5);
    const fp32 = modelStep(fp32Model, (v) => fp32Model.forward(v), x, 'fp32');
    const handedModel = buildCnn(spec, 5);
    const handed = modelStep(handedModel, (v) => handedModel.forward(v), x, 'bf16');
    const plainModel = buildCnn(spec, 5);
    const bf16 = modelStep(plainModel, plain(plainModel), x, 'bf16');
    assert.equal(bf16.heldBytes, fp32.heldBytes);
    assert.equal(fp32.heldBytes - handed.heldBytes, 2 * 32 * 4 * 4 * (4 - 2)); // the first pooling's output
    assert.deepEqual(handed.grads, bf16.grads);
  });

  for (const block of ['basic', 'bottleneck'] as const) {
    it(`a ${block} ResNet hands its blocks' inner BatchNorm+ReLU outputs to their convs: 2 bytes an element less for each`, () => {
      const spec: ResNetSpec = { type: 'resnet', block, blocks: [1, 1, 1, 1], width: 4, stem: 'cifar', inChannels: 3, inputSize: 8, out: 5 };
      const x = randn([2, 3, 8, 8], new Rng(10), 'float32');
      const step = (precision: Precision) => {
        const model = buildResNet(spec, 3);
        return modelStep(model, (v) => model.forward(v), x, precision);
      };
      // Each stage s: planes 4·2^s over S_in = 8 / 2^max(s-1, 0) and S_out = 8 / 2^s: a basic block
      // hands over bn1's output (planes × S_out²), a bottleneck bn1's (S_in²) and bn2's (S_out²).
      let elements = 0;
      for (let s = 0; s < 4; s++) {
        const [planes, sIn, sOut] = [4 * 2 ** s, 8 / 2 ** Math.max(s - 1, 0), 8 / 2 ** s];
        elements += 2 * (block === 'basic' ? planes * sOut * sOut : planes * (sIn * sIn + sOut * sOut));
      }
      const [fp32, bf16] = [step('fp32'), step('bf16')];
      assert.equal(fp32.heldBytes - bf16.heldBytes, elements * (4 - 2));
    });
  }

  it('float32 ignores the mark: the values stay readable', () => {
    const rng = new Rng(2);
    const [x, w, gamma, beta] = [leaf([4, 8], rng), leaf([8, 8], rng), leaf([8], rng), leaf([8], rng)];
    withComputePrecision('fp32', () => {
      const h = layerNorm(x, gamma, beta);
      linear(lastUse(h), w, null);
      assert.equal(h.values().length, 32);
    });
  });

  it('nothing is released whose maker reads its output (exp), nor a leaf', () => {
    const rng = new Rng(3);
    const [x, w] = [leaf([4, 8], rng), leaf([8, 8], rng)];
    withComputePrecision('bf16', () => {
      const e = exp(x);
      linear(lastUse(e), w, null);
      linear(lastUse(x), w, null);
      assert.equal(e.values().length, 32);
      assert.equal(x.values().length, 32);
    });
  });

  it('the cross-entropy writes its probabilities over handed-over logits of a linear: one logits-sized buffer fewer, the same loss and gradients', () => {
    const [rows, width, classes] = [24, 16, 40];
    const run = (precision: Precision, handOver: boolean) => {
      const rng = new Rng(6);
      const [x, w, b] = [leaf([rows, width], rng), leaf([classes, width], rng), leaf([classes], rng)];
      const labels = Int32Array.from({ length: rows }, (_, i) => (i % 5 === 4 ? -1 : (i * 7) % classes));
      const recycler = new BufferRecycler();
      let heldBytes = 0;
      let loss = NaN;
      let logits: Tensor | null = null;
      withComputePrecision(precision, () => recycler.run(() => {
        logits = linear(x, w, b);
        const l = crossEntropy(handOver ? lastUse(logits) : logits, labels);
        heldBytes = recycler.bytesLent;
        loss = l.item();
        backward(l);
      }));
      return { heldBytes, loss, logits: logits!, grads: [x, w, b].map((t) => [...t.gradValues()!]) };
    };
    for (const precision of ['fp32', 'bf16'] as const) {
      const [kept, handed] = [run(precision, false), run(precision, true)];
      assert.equal(kept.heldBytes - handed.heldBytes, rows * classes * 4, precision);
      assert.equal(handed.loss, kept.loss, precision);
      assert.deepEqual(handed.grads, kept.grads, precision);
      assert.throws(() => handed.logits.values(), /released after 'crossEntropy' took them as their last use/);
      assert.equal(kept.logits.values().length, rows * classes);
    }
  });

  it('outside autograd (an evaluation) the cross-entropy writes its probabilities over handed-over logits too: the same loss, one buffer fewer', () => {
    const [rows, width, classes] = [24, 16, 40];
    const run = (handOver: boolean) => {
      const rng = new Rng(6);
      const [x, w] = [leaf([rows, width], rng), leaf([classes, width], rng)];
      const labels = Int32Array.from({ length: rows }, (_, i) => (i * 7) % classes);
      const recycler = new BufferRecycler();
      let logits: Tensor | null = null;
      const loss = noGrad(() => recycler.run(() => {
        logits = linear(x, w, null);
        return crossEntropy(handOver ? lastUse(logits) : logits, labels).item();
      }));
      return { loss, bytes: recycler.bytesTaken, logits: logits! };
    };
    const [kept, handed] = [run(false), run(true)];
    assert.equal(handed.loss, kept.loss);
    assert.equal(kept.bytes - handed.bytes, rows * classes * 4);
    assert.throws(() => handed.logits.values(), /released after 'crossEntropy' took them as their last use/);
  });

  it('a broken promise fails loudly, naming the op that took the values', () => {
    const rng = new Rng(4);
    const [x, w, gamma, beta] = [leaf([4, 8], rng), leaf([8, 8], rng), leaf([8], rng), leaf([8], rng)];
    withComputePrecision('bf16', () => {
      const h = layerNorm(x, gamma, beta);
      linear(lastUse(h), w, null);
      assert.throws(() => add(h, 1), /released after 'linear' took them as their last use/);
      const a = batchNormRelu(randn([2, 4, 3, 3], rng, 'float32'), leaf([4], rng), leaf([4], rng), bnState(4));
      conv2d(lastUse(a), leaf([4, 4, 3, 3], rng), null);
      assert.throws(() => add(a, 1), /released after 'conv2d' took them as their last use/);
    });
  });
});
