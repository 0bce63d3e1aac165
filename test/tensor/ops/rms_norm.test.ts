import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, backward, rmsNorm } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, onDevice, seedFor, valuesOf } from '../../helpers/on_device.js';
import { Rng, randn, uniform } from '../../helpers/tensors.js';

/** Hugging Face's LlamaRMSNorm written out: x / sqrt(mean(x²) + eps) · weight per row of the last axis. */
function reference(x: readonly number[], weight: readonly number[], eps: number): number[] {
  const cols = weight.length;
  const y: number[] = [];
  for (let off = 0; off < x.length; off += cols) {
    let sq = 0;
    for (let j = 0; j < cols; j++) sq += x[off + j] ** 2;
    const rms = Math.sqrt(sq / cols + eps);
    for (let j = 0; j < cols; j++) y.push((x[off + j] / rms) * weight[j]);
  }
  return y;
}

// Model norms [N, T, C], Qwen3's per-head norms [N, H, T, D], and a row longer than a GPU workgroup.
const SHAPES = [[2, 3, 8], [2, 2, 3, 4], [3, 150]];

describe('rmsNorm', () => {
  for (const shape of SHAPES) {
    const C = shape[shape.length - 1];
    it(`matches the written-out definition ${JSON.stringify(shape)}`, async () => {
      const r = new Rng(C);
      const x = randn(shape, r, 'float64', 3);
      const w = uniform([C], r, 0.5, 1.5);
      const y = rmsNorm(onDevice(x), onDevice(w), 1e-6);
      assert.deepEqual([...y.shape], shape);
      assertValues(await valuesOf(y), reference(x.toArray(), w.toArray(), 1e-6), { rtol: 1e-12, atol: 1e-12 });
    });
    it(`gradcheck ${JSON.stringify(shape)}`, async () => {
      const r = new Rng(C + 1);
      await gradcheckOnBackend((x, w) => rmsNorm(x, w, 1e-5), [randn(shape, r), uniform([C], r, 0.5, 1.5)], { name: 'rmsNorm' });
    });
  }

  it('eps keeps an all-zero row finite; gradcheck with a frozen weight, and with a frozen input', async () => {
    const zeros = rmsNorm(onDevice(Tensor.zeros([2, 4], 'float64')), onDevice(uniform([4], new Rng(1), 0.5, 1.5)), 1e-6);
    assertValues(await valuesOf(zeros), new Array<number>(8).fill(0), { atol: 0 });
    const r = new Rng(9);
    const mk = (): Tensor[] => [randn([3, 5], r), uniform([5], r, 0.5, 1.5)];
    await gradcheckOnBackend((x, w) => rmsNorm(x, w, 1e-5), mk(), { name: 'rmsNorm x only', wrt: [0] });
    await gradcheckOnBackend((x, w) => rmsNorm(x, w, 1e-5), mk(), { name: 'rmsNorm weight only', wrt: [1] });
  });

  it('a second use adds to the gradient (backward accumulates)', async () => {
    const r = new Rng(4);
    const x = onDevice(randn([2, 6], r), true);
    const w = onDevice(uniform([6], r, 0.5, 1.5), true);
    const seed = randn([2, 6], r).toArray();
    backward(rmsNorm(x, w, 1e-6), seedFor(x, seed));
    const once = [await valuesOf(x.grad!), await valuesOf(w.grad!)];
    backward(rmsNorm(x, w, 1e-6), seedFor(x, seed));
    assertValues(await valuesOf(x.grad!), once[0].map((v) => 2 * v), { rtol: 1e-12, atol: 1e-12 });
    assertValues(await valuesOf(w.grad!), once[1].map((v) => 2 * v), { rtol: 1e-12, atol: 1e-12 });
  });

  it('refuses a weight that is not [C], an empty C, and an eps that is not positive', () => {
    const x = onDevice(Tensor.zeros([2, 3, 8], 'float64'));
    assert.throws(() => rmsNorm(x, onDevice(Tensor.zeros([7], 'float64')), 1e-6), /rmsNorm: weight must be \[C\] for x \[\.\.\., C\] \(shapes \[2, 3, 8\], \[7\]\)/);
    assert.throws(() => rmsNorm(x, onDevice(Tensor.zeros([1, 8], 'float64')), 1e-6), /rmsNorm: weight must be \[C\]/);
    assert.throws(() => rmsNorm(x, onDevice(Tensor.zeros([8], 'float64')), 0), /rmsNorm: eps must be a positive number, got 0/);
    assert.throws(() => rmsNorm(onDevice(Tensor.zeros([2, 0], 'float64')), onDevice(Tensor.zeros([0], 'float64')), 1e-6), /rmsNorm: the normalised dimension C is empty/);
    assert.throws(() => rmsNorm(x, onDevice(Tensor.zeros([8], 'float64')), Number.NaN), /eps must be a positive number/);
  });
});
