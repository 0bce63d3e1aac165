import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planShards } from '../../../src/parallel/zero/shard_plan.js';

describe('ZeRO shard plan', () => {
  it('cuts the arena into contiguous ranges that cover it once, equal but for a shorter last one', () => {
    for (const [total, world] of [[10, 4], [12, 4], [3, 4], [0, 2], [7, 1]]) {
      const p = planShards(total, world);
      assert.equal(p.ranges.length, world);
      assert.equal(p.counts.reduce((a, b) => a + b, 0), total);
      let at = 0;
      for (const [a, b] of p.ranges) {
        assert.equal(a, at);
        at = b;
      }
      assert.equal(at, total);
      assert.ok(p.counts.slice(0, -1).every((c) => c >= p.counts[world - 1]), JSON.stringify(p.counts));
    }
    assert.deepEqual(planShards(10, 4).counts, [3, 3, 3, 1]);
  });

  it('refuses a world size that is not a positive integer', () => {
    assert.throws(() => planShards(10, 0), /world size/);
  });
});
