/**
 * The native row argmax (src/native/row_argmax.cc) against the JavaScript loop it stands in for
 * (generate/sampling.ts argmax): the first largest value, −0 equal to +0, NaN never taken unless
 * the row starts with one; rows of every length around its chunks of 64.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadNativeBackend } from '../../../src/tensor/backends/native.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { Rng } from '../../../src/util/rng.js';

const loaded = loadNativeBackend();
const skip = loaded.backend ? false : process.env.CI === 'true' ? false : `native addon unavailable: ${loaded.reason}`;

/** The loop's answer. */
function firstLargest(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

describe('the native row argmax', { skip }, () => {
  const rowArgmax = (xs: ArrayLike<number>): number => hostKernels(loaded.backend!).rowArgmax!(Float32Array.from(xs));

  test('the first of equal maxima, −0 as +0, NaN skipped unless first, 0 for an empty row', () => {
    assert.equal(rowArgmax([1, 3, 3, 2]), 1);
    assert.equal(rowArgmax([-0, 0, 0]), 0);
    assert.equal(rowArgmax([1, NaN, 2, NaN]), 2);
    assert.equal(rowArgmax([NaN, 5, 6]), 0);
    assert.equal(rowArgmax([-Infinity, -Infinity]), 0);
    assert.equal(rowArgmax([]), 0);
  });

  test('the loop\'s answer on 3,000 seeded rows of 1-700 values, with ties and NaNs', () => {
    const rng = new Rng(7);
    for (let t = 0; t < 3000; t++) {
      const row = Float32Array.from({ length: 1 + rng.int(700) }, () => (rng.uniform() < 0.03 ? NaN : rng.int(41) - 20));
      assert.equal(rowArgmax(row), firstLargest(row), `row ${t} of ${row.length}`);
    }
  });
});
