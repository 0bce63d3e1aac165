/**
 * linear under bf16 with a frozen weight (LoRA's base): dW is never formed, so the backward needs no
 * copy of x. A handed-over x gives its bf16 copy back right after the forward, and the gradients
 * that do flow (x, the LayerNorm's) are the same, bit for bit, as with the weight trained.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { Tensor, backward, lastUse, layerNorm, linear, withComputePrecision } from '../../../src/tensor/index.js';
import { BufferRecycler } from '../../../src/tensor/recycler.js';
import { Rng, randn } from '../../helpers/tensors.js';

const [M, C, K] = [64, 48, 3];

function leaf(shape: number[], rng: Rng, trains: boolean): Tensor {
  const t = randn(shape, rng, 'float32');
  t.requiresGrad = trains;
  return t;
}

/** K blocks h ← linear(layerNorm(h), W_k) under bf16: bytes held after the forward, and the gradients of x, γ, β. */
function chain(frozenWeights: boolean, handOver: boolean): { heldBytes: number; grads: number[][] } {
  const rng = new Rng(11);
  const x = leaf([M, C], rng, true);
  const params = Array.from({ length: K }, () => [leaf([C, C], rng, !frozenWeights), leaf([C], rng, true), leaf([C], rng, true)] as const);
  const recycler = new BufferRecycler();
  let heldBytes = 0;
  withComputePrecision('bf16', () => recycler.run(() => {
    let h = x;
    for (const [w, gamma, beta] of params) {
      const normed = layerNorm(h, gamma, beta);
      h = linear(handOver ? lastUse(normed) : normed, w, null);
    }
    heldBytes = recycler.bytesLent;
    backward(h, new Float32Array(h.size).fill(1));
  }));
  return { heldBytes, grads: [x, ...params.flatMap(([, g, b]) => [g, b])].map((t) => [...t.gradValues()!]) };
}

describe('linear with a frozen weight under bf16', () => {
  it('gives a handed-over input\'s bf16 copy back after the forward: 2 bytes an element less for each', () => {
    const trained = chain(false, true);
    const frozen = chain(true, true);
    assert.equal(trained.heldBytes - frozen.heldBytes, K * M * C * 2);
  });

  it('the gradients that flow are those of the same step with the weights trained, bit for bit', () => {
    for (const handOver of [true, false]) assert.deepEqual(chain(true, handOver).grads, chain(false, handOver).grads, `hand-over ${handOver}`);
  });
});
