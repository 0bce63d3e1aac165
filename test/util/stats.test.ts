import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mean, median, quantile, stdev, sum } from '../../src/util/stats.js';

describe('order statistics', () => {
  it('median: the middle value, or the mean of the two middle ones; NaN for none; the input is not reordered', () => {
    const xs = [5, 1, 3];
    assert.equal(median(xs), 3);
    assert.deepEqual(xs, [5, 1, 3]);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it('quantile: linear between neighbours, q clamped to [0, 1]', () => {
    const xs = [60, 60, 60, 60, 68, 68, 68, 68, 68, 68, 500];
    assert.equal(quantile(xs, 0.25), 60);
    assert.equal(quantile(xs, 0.75), 68);
    assert.equal(quantile([0, 10], 0.3), 3);
    assert.equal(quantile([1, 2], 2), 2);
    assert.equal(mean([1, 2, 3]), 2);
  });

  it('stdev: the sample standard deviation (n − 1), 0 with fewer than two values', () => {
    assert.equal(stdev([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7));
    assert.equal(stdev([3]), 0);
    assert.equal(stdev([]), 0);
  });

  it('sum: in order, 0 for none', () => {
    assert.equal(sum([1, 2, 3.5]), 6.5);
    assert.equal(sum([]), 0);
  });
});
