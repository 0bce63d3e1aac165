import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeHeads, splitHeads } from '../../../src/nn/layers/attention.js';
import { Tensor, backward, mul, permute, reshape, sum } from '../../../src/tensor/index.js';

/** [n, t, c] of distinct values, a leaf that takes a gradient. */
function input(n: number, t: number, c: number): Tensor {
  const x = Tensor.from(Array.from({ length: n * t * c }, (_, i) => i - 7.5), [n, t, c]);
  x.requiresGrad = true;
  return x;
}

/** Each element weighted by its own index, summed: a loss whose gradient tells every position apart. */
function weightedSum(y: Tensor): Tensor {
  return sum(mul(y, Tensor.from(Array.from({ length: y.size }, (_, i) => i + 1), [...y.shape])));
}

describe('splitHeads and mergeHeads (nn/layers/attention.ts)', () => {
  for (const t of [1, 3]) {
    it(`T = ${t}: the permute of [N, T, H, D] to [N, H, T, D] and back, values and gradients`, () => {
      const [n, heads, d] = [2, 3, 4];
      const [x, y] = [input(n, t, heads * d), input(n, t, heads * d)];
      const got = splitHeads(x, heads);
      const want = permute(reshape(y, [n, t, heads, d]), [0, 2, 1, 3]);
      assert.deepEqual(got.shape, [n, heads, t, d]);
      assert.deepEqual(Array.from(got.values()), Array.from(want.values()));
      backward(weightedSum(got));
      backward(weightedSum(want));
      assert.deepEqual(Array.from(x.gradValues()!), Array.from(y.gradValues()!));

      const merged = mergeHeads(got);
      assert.deepEqual(merged.shape, [n, t, heads * d]);
      assert.deepEqual(Array.from(merged.values()), Array.from(x.values()));
    });
  }

  it('T = 1 (a decode step): views of the input, no copy', () => {
    const x = input(2, 1, 12);
    const heads = splitHeads(x, 3);
    assert.equal(heads.storage, x.storage);
    assert.equal(mergeHeads(heads).storage, x.storage);
  });
});
