/** Values a kernel leaves on the device (a loss, a sum of squares) are read when asked for. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crossEntropy } from '../../src/tensor/ops/loss.js';
import { mseLoss } from '../../src/tensor/ops/loss.js';
import { DeviceScalar, sumOfSquares } from '../../src/tensor/scalar.js';
import { Tensor } from '../../src/tensor/tensor.js';

describe('device values', () => {
  it('sumOfSquares is a DeviceScalar holding the float64 sum, by read()', async () => {
    const x = Tensor.from([1, 2, 3, 0.1], [4]);
    const s = sumOfSquares(x.storage);
    assert.ok(s instanceof DeviceScalar);
    const want = 1 + 4 + 9 + Math.fround(0.1) ** 2;
    assert.equal(await s.read(), want);
  });

  it('a loss is a one-element tensor whose storage the kernel wrote (no host number went in)', async () => {
    const logits = Tensor.from([2, 0, 0, 1, 3, 0], [2, 3], 'float64');
    const loss = crossEntropy(logits, Int32Array.from([0, 1]));
    assert.equal(loss.size, 1);
    assert.deepEqual(loss.shape, []);
    const row = (a: number, b: number, c: number, k: number): number => Math.log(Math.exp(a) + Math.exp(b) + Math.exp(c)) - [a, b, c][k];
    const want = (row(2, 0, 0, 0) + row(1, 3, 0, 1)) / 2;
    assert.ok(Math.abs(loss.item() - want) < 1e-12);
    assert.equal((await loss.read())[0], loss.item());
    const mse = mseLoss(Tensor.from([1, 2], [2], 'float64'), Tensor.from([0, 0], [2], 'float64'));
    assert.equal(mse.item(), 2.5);
  });
});
