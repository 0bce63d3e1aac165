/**
 * Attention under bf16 without dropout keeps its probabilities for the backward as the bf16 copy
 * the forward multiplied v with (2 bytes an element), not in float32 (4): measured as the bytes the
 * step's recycler holds after the forward, against the float32 step (which keeps float32 ones).
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { backward, scaledDotProductAttention, withComputePrecision, type Precision } from '../../../src/tensor/index.js';
import { BufferRecycler } from '../../../src/tensor/recycler.js';
import { Rng, randn } from '../../helpers/tensors.js';

const [B, H, T, D] = [2, 3, 40, 8];

function held(precision: Precision): { heldBytes: number; grads: Float32Array[] } {
  const rng = new Rng(3);
  const ins = [0, 1, 2].map(() => {
    const t = randn([B, H, T, D], rng, 'float32');
    t.requiresGrad = true;
    return t;
  });
  const recycler = new BufferRecycler();
  let heldBytes = 0;
  withComputePrecision(precision, () => recycler.run(() => {
    const y = scaledDotProductAttention(ins[0], ins[1], ins[2], { causal: true });
    heldBytes = recycler.bytesLent;
    backward(y, new Float32Array(y.size).fill(1));
  }));
  return { heldBytes, grads: ins.map((t) => Float32Array.from(t.gradValues()!)) };
}

describe('attention under bf16, probabilities saved', () => {
  it('holds them in bf16 after the forward: 2 bytes an element less than the float32 step', () => {
    assert.equal(held('fp32').heldBytes - held('bf16').heldBytes, B * H * T * T * 2);
  });

  it('gives the float32 step\'s gradients within bf16 rounding', () => {
    const [a, b] = [held('fp32').grads, held('bf16').grads];
    for (let i = 0; i < 3; i++) {
      const scale = Math.max(...a[i].map(Math.abs));
      for (let j = 0; j < a[i].length; j++) assert.ok(Math.abs(a[i][j] - b[i][j]) <= 0.03 * scale, `input ${i} [${j}]: ${a[i][j]} vs ${b[i][j]}`);
    }
  });
});
