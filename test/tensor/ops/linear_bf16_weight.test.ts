/**
 * linear in a float32 step over a weight held in bfloat16 (src/tensor/ops/linear_bf16_weight.ts),
 * on each cpu backend: it computes what linear computes over the weight widened to float32, one row
 * of x and several (the native thin kernel's rows and past them), over one tile and several (the
 * tiles cut W's rows), with a bias; x's and the
 * bias's gradients flow, the weight gets none. Widening is exact, so each output is the same float32
 * dot product; the bound allows the summation order to differ (the thin kernel's lanes, a tile's
 * GEMM against the whole matrix's: a few ulps of the largest output), where an error in a tile's rows or columns would be of the
 * order of the output itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { Tensor, backward, linear } from '../../../src/tensor/index.js';
import { toBf16 } from '../../../src/tensor/ops/cast.js';
import { tileRows } from '../../../src/tensor/ops/linear_bf16_weight.js';
import { Rng, randn } from '../../helpers/tensors.js';

function worst(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) [diff, norm] = [Math.max(diff, Math.abs(a[i] - b[i])), Math.max(norm, Math.abs(b[i]))];
  return diff / norm;
}

describe('linear over a bfloat16 weight in a float32 step', () => {
  // Up to 8 rows of x the native backend's thin kernel serves (src/native/linear_widened.cc), more the tiles + GEMM; js: the tiles always.
  for (const [M, N, K] of [[1, 300, 1024], [5, 300, 1024], [12, 300, 1024], [3, 7, 64], [20, 7, 64]] as const) {
    it(`M ${M}, N ${N}, K ${K} (${Math.ceil(N / tileRows(N, K))} tile(s)): the float32 product of the widened weight; x's and the bias's gradients flow`, () => {
      const rng = new Rng(M * 7 + N);
      const w = toBf16(randn([N, K], rng, 'float32', 0.05));
      const widened = Tensor.fromHost(Float32Array.from(w.values() as Uint16Array, (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]), [N, K]);
      const x = randn([M, K], rng, 'float32');
      const xDense = Tensor.fromHost(Float32Array.from(x.values() as Float32Array), [M, K]);
      const b = randn([N], rng, 'float32');
      const bDense = Tensor.fromHost(Float32Array.from(b.values() as Float32Array), [N]);
      for (const t of [x, xDense, b, bDense]) t.requiresGrad = true;
      const y = linear(x, w, b);
      const yDense = linear(xDense, widened, bDense);
      assert.equal(y.dtype, 'float32');
      assert.deepEqual(y.shape, [M, N]);
      const err = worst(y.values() as Float32Array, yDense.values() as Float32Array);
      assert.ok(err <= 1e-6, `forward: ${err} of the largest output`);
      const gy = Float32Array.from({ length: M * N }, (_, i) => Math.cos(i));
      backward(y, gy);
      backward(yDense, gy);
      const gxErr = worst(x.gradValues() as Float32Array, xDense.gradValues() as Float32Array);
      assert.ok(gxErr <= 1e-6, `x's gradient: ${gxErr}`);
      assert.deepEqual(b.gradValues(), bDense.gradValues());
      assert.equal(w.grad, null);
    });
  }

  it('refuses a bfloat16 weight that asks for a gradient, naming why', () => {
    const w = toBf16(randn([4, 8], new Rng(1), 'float32'));
    w.requiresGrad = true;
    assert.throws(() => linear(randn([2, 8], new Rng(2), 'float32'), w, null), /held in bfloat16 for inference: it gets no gradient at float32/);
  });
});
