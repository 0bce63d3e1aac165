/**
 * The ops on a quantized weight (src/tensor/ops/quant.ts), on each cpu backend: quantize and
 * dequantize give the formats' own bytes and values; `linear` and `embedding` over a quantized
 * weight compute what they compute over its dequantized float32 copy, and only the input's and the
 * bias's gradients flow.
 *
 * Bound for linear: the float32 op sums K products in float32 (its GEMM's order), the quantized
 * kernel's reference sums them in float64 and a native thin kernel on x quantized per block (its own
 * test bounds that); the difference allowed here is that of an fp32 sum plus the activations'
 * 8-bit rounding, 2⁻⁸ of Σ|x·w| a row — ~2⁻¹⁵ is what an exact product shows.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { Tensor, backward, dequantize, embedding, linear, quantize } from '../../../src/tensor/index.js';
import { QUANT_TYPES, dequantizeRows, quantFormat, quantizeRows } from '../../../src/tensor/quant/formats.js';
import { Rng, randn } from '../../helpers/tensors.js';
import { ROWS8_OF } from '../../../src/tensor/quant/rows8.js';

// The interleaved formats' rows come eight to a group (tensor/quant/rows8.ts): their own tests take whole groups.
const ROW_TYPES = QUANT_TYPES.filter((t) => !Object.hasOwn(ROWS8_OF, t));

/** max over rows of |a − b| / Σ|x·w| (the row's scale, which an absolute rounding bound is relative to). */
function worstRowError(a: Float32Array, b: Float32Array, scale: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale[i]);
  return worst;
}

function absProducts(x: Float32Array, w: Float32Array, M: number, N: number, K: number): Float64Array {
  const s = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) s[m * N + n] += Math.abs(x[m * K + k] * w[n * K + k]);
  return s;
}

describe('quantized weights', () => {
  for (const type of ROW_TYPES) {
    const K = 2 * quantFormat(type).blockWeights;
    it(`${type}: quantize and dequantize are the format's bytes and values`, () => {
      const w = randn([6, K], new Rng(1), 'float32', 0.1);
      const q = quantize(w, type);
      assert.equal(q.dtype, type);
      assert.deepEqual(q.shape, [6, K]);
      assert.equal(q.requiresGrad, false);
      const bytes = quantizeRows(type, w.values() as Float32Array, K);
      assert.deepEqual(q.values(), bytes);
      const expected = new Float32Array(6 * K);
      dequantizeRows(type, bytes, K, 0, 6, expected);
      assert.deepEqual(dequantize(q).values(), expected);
    });

    it(`${type}: linear over it is linear over its float32 values; x's and the bias's gradients flow`, () => {
      const [M, N] = [5, 7];
      const rng = new Rng(2);
      const q = quantize(randn([N, K], rng, 'float32', 0.05), type);
      const dense = dequantize(q);
      const x = randn([1, M, K], rng, 'float32');
      const xDense = Tensor.fromHost(Float32Array.from(x.values() as Float32Array), [1, M, K]);
      const b = randn([N], rng, 'float32');
      const bDense = Tensor.fromHost(Float32Array.from(b.values() as Float32Array), [N]);
      for (const t of [x, xDense, b, bDense]) t.requiresGrad = true;
      const y = linear(x, q, b);
      const yDense = linear(xDense, dense, bDense);
      assert.deepEqual(y.shape, [1, M, N]);
      const scale = absProducts(x.values() as Float32Array, dense.values() as Float32Array, M, N, K);
      const err = worstRowError(y.values() as Float32Array, yDense.values() as Float32Array, scale);
      assert.ok(err <= 2 ** -8, `forward: ${err} of Σ|x·w| (bound 2⁻⁸)`);
      const gy = Float32Array.from({ length: M * N }, (_, i) => Math.cos(i));
      backward(y, gy);
      backward(yDense, gy);
      const gx = x.gradValues() as Float32Array;
      const gxDense = xDense.gradValues() as Float32Array;
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < gx.length; i++) [diff, norm] = [Math.max(diff, Math.abs(gx[i] - gxDense[i])), Math.max(norm, Math.abs(gxDense[i]))];
      assert.ok(diff <= 1e-5 * norm, `x's gradient: ${diff} against ${norm}`);
      assert.deepEqual(b.gradValues(), bDense.gradValues());
      assert.equal(q.grad, null, 'the quantized weight has no gradient');
    });
  }

  it('embedding over a quantized table is its dequantized rows', () => {
    const table = quantize(randn([9, 64], new Rng(3), 'float32'), 'q5_0');
    const rows = embedding(table, Int32Array.from([8, 0, 8, 3]), [2, 2]);
    assert.deepEqual(rows.shape, [2, 2, 64]);
    const dense = dequantize(table).values() as Float32Array;
    const expected = [8, 0, 8, 3].flatMap((r) => [...dense.subarray(r * 64, (r + 1) * 64)]);
    assert.deepEqual([...(rows.values() as Float32Array)], expected);
    assert.throws(() => embedding(table, Int32Array.from([9])), /id 9 at position 0 is outside \[0, 9\)/);
  });

  it('refuses a quantized weight that asks for a gradient, a ragged row, and a non-float32 input', () => {
    const q = quantize(randn([4, 64], new Rng(4), 'float32'), 'q8_0');
    q.name = 'layers.0.q_proj.weight';
    q.requiresGrad = true;
    assert.throws(() => linear(randn([2, 64], new Rng(5), 'float32'), q, null),
      /linear: layers\.0\.q_proj\.weight is q8_0, which is frozen: its gradient is not computed \(train a LoRA adapter beside it\)/);
    assert.throws(() => quantize(randn([4, 48], new Rng(6), 'float32'), 'q8_0'), /a row of 48 values is not whole q8_0 blocks \(32 weights each\)/);
    assert.throws(() => quantize(randn([4, 64], new Rng(6), 'float64'), 'q8_0'), /quantize: a float64 tensor; quantize takes float32 values/);
    q.requiresGrad = false;
    assert.throws(() => linear(randn([2, 64], new Rng(5), 'float64'), q, null), /a q8_0 weight multiplies float32 inputs, not float64/);
  });
});
