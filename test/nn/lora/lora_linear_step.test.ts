/**
 * LoraLinear's forward against the plain composition it replaces, y = x Wᵀ + s·B(A x) written with
 * the scale on B's output: the same output and gradients of x, A and B (bit for bit with s = 2, the
 * bench's and PEFT's usual alpha = 2r; within 1e-5 otherwise), and a step
 * that holds two [M, out] float32 tensors fewer after the forward (the base product and the update
 * go back to the step's buffers once summed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tensor, add, affine, backward, linear } from '../../../src/tensor/index.js';
import { BufferRecycler } from '../../../src/tensor/recycler.js';
import { Linear } from '../../../src/nn/layers/linear.js';
import { LoraLinear } from '../../../src/nn/lora/lora_linear.js';
import { Rng, randn } from '../../helpers/tensors.js';

const [M, IN, OUT, RANK] = [32, 24, 40, 4];

interface Step { out: Float32Array; grads: Float32Array[]; heldBytes: number }

function step(adapted: boolean, alpha = 2 * RANK): Step {
  const layer = new LoraLinear(new Linear(IN, OUT, new Rng(1)), { rank: RANK, alpha, dropout: 0 }, new Rng(2), new Rng(3));
  // B starts at zero; a random B makes every gradient depend on it.
  layer.lora_B.weight.storage.write(randn([OUT, RANK], new Rng(4)).values() as Float32Array);
  const x = randn([M, IN], new Rng(5), 'float32');
  x.requiresGrad = true;
  const recycler = new BufferRecycler();
  let heldBytes = 0;
  let out = new Float32Array(0);
  recycler.run(() => {
    const y = adapted ? layer.forward(x)
      : add(linear(x, layer.weight, layer.bias), affine(linear(linear(x, layer.lora_A.weight, null), layer.lora_B.weight, null), layer.scaling));
    heldBytes = recycler.bytesLent;
    out = Float32Array.from(y.values() as Float32Array);
    backward(y, randn(y.shape, new Rng(6)).values() as Float32Array);
  });
  return { out, heldBytes, grads: [x, layer.lora_A.weight, layer.lora_B.weight].map((t) => Float32Array.from(t.gradValues()!)) };
}

function assertClose(a: Float32Array, b: Float32Array, what: string, rtol: number): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= rtol * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

describe('LoraLinear forward', () => {
  it('equals x Wᵀ + s·B(A x) bit for bit with s = 2 (alpha = 2r): output and the gradients of x, A, B', () => {
    const [ours, plain] = [step(true), step(false)];
    assert.deepEqual(ours.out, plain.out, 'output');
    ['x', 'A', 'B'].forEach((n, i) => assert.deepEqual(ours.grads[i], plain.grads[i], `gradient of ${n}`));
  });

  it('with s = 1.5 (float rounding may differ): output and the gradients of x, A, B within 1e-5 (float32 rounding, ~2e-6 seen)', () => {
    const [ours, plain] = [step(true, 6), step(false, 6)];
    assertClose(ours.out, plain.out, 'output', 1e-5);
    ['x', 'A', 'B'].forEach((n, i) => assertClose(ours.grads[i], plain.grads[i], `gradient of ${n}`, 1e-5));
  });

  it('holds two [M, out] tensors fewer after the forward, less one [M, out] scale and plus one [M, r]', () => {
    const [ours, plain] = [step(true), step(false)];
    // plain holds x Wᵀ, A x, B A x, s·B A x and the sum; ours A x, s·A x and the sum.
    assert.equal(plain.heldBytes - ours.heldBytes, 4 * (3 * M * OUT - M * RANK));
  });
});
