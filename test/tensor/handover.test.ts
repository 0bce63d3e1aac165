/**
 * Handing an activation over to its last reader (src/tensor/handover.ts): under bf16 a linear that
 * takes a LayerNorm's output with `lastUse` keeps a bf16 copy for its backward and gives the
 * float32 values back (attention likewise for q, k, v), measured as the bytes the step's recycler
 * holds after the forward. The cross-entropy writes its probabilities over handed-over logits of a
 * linear head, in either precision.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import {
  Tensor, add, backward, crossEntropy, exp, lastUse, layerNorm, linear, permute, scaledDotProductAttention, withComputePrecision, type Precision,
} from '../../src/tensor/index.js';
import { BufferRecycler } from '../../src/tensor/recycler.js';
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

  it('a broken promise fails loudly, naming the op that took the values', () => {
    const rng = new Rng(4);
    const [x, w, gamma, beta] = [leaf([4, 8], rng), leaf([8, 8], rng), leaf([8], rng), leaf([8], rng)];
    withComputePrecision('bf16', () => {
      const h = layerNorm(x, gamma, beta);
      linear(lastUse(h), w, null);
      assert.throws(() => add(h, 1), /released after 'linear' took them as their last use/);
    });
  });
});
