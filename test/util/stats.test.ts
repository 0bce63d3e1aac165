import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mean, median, quantile } from '../../src/util/stats.js';

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
});
