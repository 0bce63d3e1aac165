import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DistributedSampler } from '../../src/data/sampler.js';
import { ShareSampler, splitCounts } from '../../src/data/share_sampler.js';

describe('splitCounts', () => {
  it('splits by largest remainder, summing exactly to the total', () => {
    assert.deepEqual([...splitCounts(64, [0.75, 0.25])], [48, 16]);
    assert.deepEqual([...splitCounts(10, [1, 1, 1])], [4, 3, 3]);
    assert.deepEqual([...splitCounts(7, [0.7, 0.2, 0.1])], [5, 1, 1]);
    for (const total of [0, 1, 5, 63, 64, 1000]) {
      const c = splitCounts(total, [0.31, 0.52, 0.17]);
      assert.equal(c.reduce((a, b) => a + b, 0), total);
    }
  });

  it('refuses shares it cannot split by', () => {
    assert.throws(() => splitCounts(4, [0, 0]), /every share is zero/);
    assert.throws(() => splitCounts(4, [NaN, 1]), /share 0 is NaN/);
    assert.throws(() => splitCounts(4, [-1, 2]), /share 0/);
  });
});

describe('ShareSampler', () => {
  const size = 1000;
  const G = 64;

  it('every sample is seen exactly once per epoch, whatever (changing) shares the ranks take', () => {
    const s = new ShareSampler({ size, globalBatch: G, seed: 7 });
    assert.equal(s.stepsPerEpoch, 16);
    for (const epoch of [0, 1]) {
      const seen = new Int32Array(size);
      for (let b = 0; b < s.stepsPerEpoch; b++) {
        // Shares change every step, as a dynamic policy may make them.
        const a = 0.1 + (0.8 * ((b * 37 + epoch) % 11)) / 10;
        const shares = [a, 1 - a, 0.3].map((x) => x / (1.3));
        let n = 0;
        for (let r = 0; r < 3; r++) {
          for (const i of s.indices(epoch, b, shares, r)) seen[i]++;
          n += s.indices(epoch, b, shares, r).length;
        }
        assert.equal(n, Math.min(G, size - b * G), `step ${b}: the ranks' slices make up the global batch`);
      }
      assert.ok(seen.every((c) => c === 1), `epoch ${epoch}: a sample was missed or repeated`);
    }
  });

  it('the union of the ranks\' slices at step b is the single process\'s batch b (same permutation as DistributedSampler)', () => {
    const s = new ShareSampler({ size, globalBatch: G, seed: 3 });
    const single = new DistributedSampler({ size, worldSize: 1, rank: 0, seed: 3 }).indices(1);
    for (const b of [0, 5, 15]) {
      const parts = [0, 1].flatMap((r) => [...s.indices(1, b, [0.8, 0.2], r)]);
      assert.deepEqual(parts, [...single.subarray(b * G, b * G + G)]);
    }
  });

  it('is deterministic and differs by seed and epoch', () => {
    const a = new ShareSampler({ size, globalBatch: G, seed: 1 });
    const b = new ShareSampler({ size, globalBatch: G, seed: 1 });
    assert.deepEqual([...a.indices(0, 2, [0.5, 0.5], 1)], [...b.indices(0, 2, [0.5, 0.5], 1)]);
    assert.notDeepEqual([...a.indices(0, 2, [0.5, 0.5], 1)], [...a.indices(1, 2, [0.5, 0.5], 1)]);
    assert.notDeepEqual([...a.indices(0, 2, [0.5, 0.5], 1)], [...new ShareSampler({ size, globalBatch: G, seed: 2 }).indices(0, 2, [0.5, 0.5], 1)]);
  });

  it('refuses a batch or rank outside the plan', () => {
    const s = new ShareSampler({ size, globalBatch: G });
    assert.throws(() => s.indices(0, 16, [1], 0), /batch 16/);
    assert.throws(() => s.indices(0, 0, [1], 1), /rank 1 has no share/);
  });
});
