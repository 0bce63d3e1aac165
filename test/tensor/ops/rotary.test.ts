import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, backward, rotary } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, onDevice, seedFor, valuesOf } from '../../helpers/on_device.js';
import { Rng, randn } from '../../helpers/tensors.js';

/** cos and sin [T, D/2] of the angles t·θ^(−2i/D), as a Llama computes them (host tensors). */
function tables(t: number, d: number, theta = 10000): [Tensor, Tensor] {
  const h = d / 2;
  const cos = new Float64Array(t * h);
  const sin = new Float64Array(t * h);
  for (let p = 0; p < t; p++) {
    for (let i = 0; i < h; i++) {
      const angle = p * theta ** (-(2 * i) / d);
      cos[p * h + i] = Math.cos(angle);
      sin[p * h + i] = Math.sin(angle);
    }
  }
  return [Tensor.from(cos, [t, h], 'float64'), Tensor.from(sin, [t, h], 'float64')];
}

/** Hugging Face's apply_rotary_pos_emb written out: x·cos + rotate_half(x)·sin, cos/sin repeated over both halves. */
function reference(x: readonly number[], cos: readonly number[], sin: readonly number[], t: number, d: number): number[] {
  const h = d / 2;
  const y = new Array<number>(x.length);
  for (let row = 0; row < x.length / d; row++) {
    const p = row % t;
    for (let j = 0; j < d; j++) {
      const i = j % h;
      const rotated = j < h ? -x[row * d + j + h] : x[row * d + j - h];
      y[row * d + j] = x[row * d + j] * cos[p * h + i] + rotated * sin[p * h + i];
    }
  }
  return y;
}

describe('rotary', () => {
  for (const shape of [[2, 3, 5, 8], [4, 6], [1, 2, 7, 64]]) {
    const [t, d] = shape.slice(-2);
    it(`matches rotate_half's definition ${JSON.stringify(shape)}`, async () => {
      const x = randn(shape, new Rng(d));
      const [cos, sin] = tables(t, d);
      const y = rotary(onDevice(x), onDevice(cos), onDevice(sin));
      assert.deepEqual([...y.shape], shape);
      assertValues(await valuesOf(y), reference(x.toArray(), cos.toArray(), sin.toArray(), t, d), { rtol: 1e-12, atol: 1e-12 });
    });
    it(`gradcheck ${JSON.stringify(shape)} (cos and sin are constants)`, async () => {
      const [cos, sin] = tables(t, d);
      await gradcheckOnBackend((x, c, s) => rotary(x, c, s), [randn(shape, new Rng(t)), cos, sin], { name: 'rotary', wrt: [0] });
    });
  }

  it('is a rotation: norms of each pair kept, and cos 1, sin 0 is the identity', async () => {
    const x = randn([2, 3, 4], new Rng(3));
    const [cos, sin] = tables(3, 4);
    const y = await valuesOf(rotary(onDevice(x), onDevice(cos), onDevice(sin)));
    const xs = x.toArray();
    const pairNorms = (v: readonly number[]): number[] =>
      Array.from({ length: v.length / 2 }, (_, k) => {
        const row = Math.floor(k / 2), i = k % 2;
        return Math.hypot(v[row * 4 + i], v[row * 4 + i + 2]);
      });
    assertValues(pairNorms(y), pairNorms(xs), { rtol: 1e-12, atol: 1e-12 });
    const one = Tensor.full([3, 2], 1, 'float64'), zero = Tensor.zeros([3, 2], 'float64');
    assertValues(await valuesOf(rotary(onDevice(x), onDevice(one), onDevice(zero))), xs, { atol: 0 });
  });

  it('no gradient reaches cos or sin, even when they ask for one', async () => {
    const [cos, sin] = tables(3, 4);
    const c = onDevice(cos, true), s = onDevice(sin, true), x = onDevice(randn([2, 3, 4], new Rng(5)), true);
    const y = rotary(x, c, s);
    backward(y, seedFor(y, new Array<number>(y.size).fill(1)));
    assert.ok(x.grad, 'x has a gradient');
    assert.equal(c.grad, null);
    assert.equal(s.grad, null);
  });

  it('refuses an odd or empty head dimension, an empty sequence, tables of the wrong shape, and x of rank 1', () => {
    const [cos, sin] = tables(5, 8);
    const x = onDevice(Tensor.zeros([2, 5, 8], 'float64'));
    assert.throws(() => rotary(onDevice(Tensor.zeros([2, 5, 7], 'float64')), onDevice(cos), onDevice(sin)), /rotary: the head dimension D must be even and positive, got 7/);
    assert.throws(() => rotary(onDevice(Tensor.zeros([2, 5, 0], 'float64')), onDevice(Tensor.zeros([5, 0], 'float64')), onDevice(Tensor.zeros([5, 0], 'float64'))), /D must be even and positive, got 0/);
    assert.throws(() => rotary(onDevice(Tensor.zeros([2, 0, 8], 'float64')), onDevice(Tensor.zeros([0, 4], 'float64')), onDevice(Tensor.zeros([0, 4], 'float64'))), /rotary: the sequence T is empty/);
    assert.throws(() => rotary(x, onDevice(Tensor.zeros([4, 4], 'float64')), onDevice(sin)), /rotary: cos must be \[T, D\/2\] = \[5, 4\] for x \[\.\.\., 5, 8\] \(shapes \[2, 5, 8\], \[4, 4\], \[5, 4\]\)/);
    assert.throws(() => rotary(x, onDevice(cos), onDevice(Tensor.zeros([5, 8], 'float64'))), /rotary: sin must be \[T, D\/2\]/);
    assert.throws(() => rotary(onDevice(Tensor.zeros([8], 'float64')), onDevice(cos), onDevice(sin)), /rotary: x must be \[\.\.\., T, D\]/);
  });
});
