import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planBuckets } from '../../../src/train/exchange/buckets.js';

const entries = [10, 20, 5, 100, 3].map((size, i, all) => ({ name: `p${i}`, shape: [size], size, decay: false, offset: all.slice(0, i).reduce((a, b) => a + b, 0) }));

describe('planBuckets', () => {
  it('fills buckets from the arena end, a small first one, never splitting a parameter', () => {
    const plan = planBuckets(entries, { capFloats: 40, firstCapFloats: 4 });
    assert.deepEqual(plan.map((b) => b.entries), [[4], [3], [2, 1, 0]]);
    assert.deepEqual(plan.map((b) => [b.start, b.end]), [[135, 138], [35, 135], [0, 35]]);
  });

  it('covers the arena exactly once, contiguously', () => {
    for (const [cap, first] of [[1, 1], [7, 3], [1000, 1000], [30, 120]]) {
      const plan = planBuckets(entries, { capFloats: cap, firstCapFloats: first });
      let end = 138;
      for (const b of plan) {
        assert.equal(b.end, end, `cap ${cap}/${first}`);
        end = b.start;
      }
      assert.equal(end, 0);
      assert.deepEqual(plan.flatMap((b) => b.entries).sort(), [0, 1, 2, 3, 4]);
    }
  });

  it('refuses a cap below one float', () => {
    assert.throws(() => planBuckets(entries, { capFloats: 0, firstCapFloats: 1 }), /at least one float/);
  });
});
