/**
 * LoraLinear's forward against the plain composition it is, y = x Wᵀ + s·B(A x): the same output
 * and gradients of x, A and B bit for bit, and a step that holds three [M, out] float32 tensors
 * fewer after the forward (B A x, the base product and the update go back to the step's buffers
 * once read). Under a bf16 step the layer rounds x once for both products (and for q, k, v beside
 * it), where the plain composition's autocast rounds it per product: the same bits all the same
 * where s is a power of two. At s = 1.5 the fused update's GEMM may round s·(a Bᵀ) + y once (an FMA
 * into C: oneDNN's kernels without bf16 hardware do) where the composition rounds s·(a Bᵀ), then the
 * sum: one float32 rounding of the update apart, ≤ 2⁻²⁴·(|s·a Bᵀ| + |y|) an element, below 2⁻²³ of
 * max |out| here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Precision, Tensor, add, affine, backward, linear, toBf16, withComputePrecision } from '../../../src/tensor/index.js';
import { holdBaseInBf16 } from '../../../src/nn/lora/index.js';
import { Module } from '../../../src/nn/module.js';
import { BufferRecycler } from '../../../src/tensor/recycler.js';
import { Linear } from '../../../src/nn/layers/linear.js';
import { LoraLinear } from '../../../src/nn/lora/lora_linear.js';
import { Rng, randn } from '../../helpers/tensors.js';

const [M, IN, OUT, RANK] = [32, 24, 40, 4];

interface Step { out: Float32Array; grads: Float32Array[]; heldBytes: number }

function step(adapted: boolean, alpha = 2 * RANK, precision: Precision = 'fp32', baseBf16 = false): Step {
  const layer = new LoraLinear(new Linear(IN, OUT, new Rng(1)), { rank: RANK, alpha, dropout: 0 }, new Rng(2), new Rng(3));
  if (baseBf16) holdBaseInBf16(withChild(layer));
  // B starts at zero; a random B makes every gradient depend on it.
  layer.lora_B.weight.storage.write(randn([OUT, RANK], new Rng(4)).values() as Float32Array);
  const x = randn([M, IN], new Rng(5), 'float32');
  x.requiresGrad = true;
  const recycler = new BufferRecycler();
  let heldBytes = 0;
  let out = new Float32Array(0);
  recycler.run(() => withComputePrecision(precision, () => {
    const base = (): Tensor => (layer.weight.dtype === 'bfloat16' ? linear(toBf16(x), layer.weight, layer.bias) : linear(x, layer.weight, layer.bias));
    const y = adapted ? layer.forward(x)
      : add(base(), affine(linear(linear(x, layer.lora_A.weight, null), layer.lora_B.weight, null), layer.scaling));
    heldBytes = recycler.bytesLent;
    out = Float32Array.from(y.values() as Float32Array);
    backward(y, randn(y.shape, new Rng(6)).values() as Float32Array);
  }));
  return { out, heldBytes, grads: [x, layer.lora_A.weight, layer.lora_B.weight].map((t) => Float32Array.from(t.gradValues()!)) };
}

/** max |a - b| over max |b|. */
function relativeGap(a: Float32Array, b: Float32Array): number {
  let [gap, scale] = [0, 0];
  b.forEach((v, i) => {
    gap = Math.max(gap, Math.abs(a[i] - v));
    scale = Math.max(scale, Math.abs(v));
  });
  return gap / scale;
}

/** A parent module for the layer (holdBaseInBf16 looks for LoRA layers among a model's modules). */
function withChild(layer: LoraLinear): Module {
  return new (class extends Module {
    constructor() {
      super();
      this.registerModule('proj', layer);
    }

    forward(x: Tensor): Tensor {
      return layer.forward(x);
    }
  })();
}

describe('LoraLinear forward', () => {
  for (const baseBf16 of [false, true]) {
    it(`under a bf16 step (base ${baseBf16 ? 'held in bf16' : 'float32'}) equals the per-product autocast composition: bit for bit at s = 2; at s = 1.5 the output within one float32 rounding, the gradients within bf16 rounding`, () => {
      const [ours, plain] = [step(true, 2 * RANK, 'bf16', baseBf16), step(false, 2 * RANK, 'bf16', baseBf16)];
      assert.deepEqual(ours.out, plain.out, 'output');
      ['x', 'A', 'B'].forEach((n, i) => assert.deepEqual(ours.grads[i], plain.grads[i], `gradient of ${n}`));
      // s = 1.5: the fused update rounds gy where the composition rounds s·gy (one bf16 rounding apart).
      const [fused, composed] = [step(true, 6, 'bf16', baseBf16), step(false, 6, 'bf16', baseBf16)];
      assert.ok(relativeGap(fused.out, composed.out) <= 2 ** -23, `output: ${relativeGap(fused.out, composed.out)}`);
      ['x', 'A', 'B'].forEach((n, i) => assert.ok(relativeGap(fused.grads[i], composed.grads[i]) < 1e-2, `gradient of ${n}: ${relativeGap(fused.grads[i], composed.grads[i])}`));
    });
  }

  for (const alpha of [2 * RANK, 6]) {
    it(`equals x Wᵀ + s·B(A x) bit for bit (s = ${alpha / RANK}): output and the gradients of x, A, B`, () => {
      const [ours, plain] = [step(true, alpha), step(false, alpha)];
      assert.deepEqual(ours.out, plain.out, 'output');
      ['x', 'A', 'B'].forEach((n, i) => assert.deepEqual(ours.grads[i], plain.grads[i], `gradient of ${n}`));
    });
  }

  it('holds three [M, out] tensors fewer after the forward', () => {
    const [ours, plain] = [step(true), step(false)];
    // plain holds x Wᵀ, A x, B A x, s·B A x and the sum; ours A x and the sum.
    assert.equal(plain.heldBytes - ours.heldBytes, 4 * 3 * M * OUT);
  });
});
