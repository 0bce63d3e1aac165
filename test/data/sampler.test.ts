import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DistributedSampler } from '../../src/data/sampler.js';
import { BatchLoader } from '../../src/data/loader.js';
import { syntheticClassification } from '../../src/data/synthetic.js';

function sorted(a: Iterable<number>): number[] {
  return [...a].sort((x, y) => x - y);
}

/** Sample indices of every batch of an epoch, copied while iterating (the loader reuses buffers). */
function batchIndices(loader: BatchLoader, epoch: number): number[][] {
  const out: number[][] = [];
  for (const b of loader.batches(epoch)) out.push([...b.indices]);
  return out;
}

function ranks(size: number, worldSize: number, opts: { seed?: number; shuffle?: boolean; dropLast?: boolean } = {}): DistributedSampler[] {
  return Array.from({ length: worldSize }, (_, rank) => new DistributedSampler({ size, worldSize, rank, ...opts }));
}

describe('DistributedSampler', () => {
  it('matches torch for an unshuffled, padded example', () => {
    const got = ranks(10, 3, { shuffle: false }).map((s) => [...s.indices(0)]);
    assert.deepEqual(got, [
      [0, 3, 6, 9],
      [1, 4, 7, 0],
      [2, 5, 8, 1],
    ]);
    const dropped = ranks(10, 3, { shuffle: false, dropLast: true }).map((s) => [...s.indices(0)]);
    assert.deepEqual(dropped, [
      [0, 3, 6],
      [1, 4, 7],
      [2, 5, 8],
    ]);
  });

  it('pads by wrapping repeatedly when the dataset is smaller than the world', () => {
    assert.deepEqual(ranks(2, 5, { shuffle: false }).map((s) => [...s.indices(0)]), [[0], [1], [0], [1], [0]]);
    assert.deepEqual(ranks(2, 5, { dropLast: true }).map((s) => s.indices(0).length), [0, 0, 0, 0, 0]);
  });

  it('gives every rank the same count and covers the data (pad) or drops only the tail (drop)', () => {
    for (let size = 0; size <= 23; size++) {
      for (let world = 1; world <= 5; world++) {
        for (const dropLast of [false, true]) {
          const samplers = ranks(size, world, { seed: 7, dropLast });
          const shards = samplers.map((s) => s.indices(3));
          const expected = dropLast ? Math.floor(size / world) : Math.ceil(size / world);
          for (const s of shards) assert.equal(s.length, expected);
          const all = shards.flatMap((s) => [...s]);
          assert.deepEqual(sorted(all), sorted(samplers[0].globalIndices(3)));
          const distinct = new Set(all);
          if (dropLast) assert.equal(distinct.size, all.length, 'no sample twice');
          else assert.equal(distinct.size, size, 'every sample at least once');
        }
      }
    }
  });

  it('takes interleaved positions of one shared global order', () => {
    const samplers = ranks(50, 4, { seed: 3 });
    const global = samplers[0].globalIndices(1);
    for (const s of samplers) {
      assert.deepEqual([...s.globalIndices(1)], [...global]);
      const mine = s.indices(1);
      for (let k = 0; k < mine.length; k++) assert.equal(mine[k], global[k * 4 + s.rank]);
    }
  });

  it('is deterministic per (seed, epoch) and differs across seeds and epochs', () => {
    const a = new DistributedSampler({ size: 1000, worldSize: 2, rank: 1, seed: 42 });
    const b = new DistributedSampler({ size: 1000, worldSize: 2, rank: 1, seed: 42 });
    const c = new DistributedSampler({ size: 1000, worldSize: 2, rank: 1, seed: 43 });
    assert.deepEqual(a.indices(5), b.indices(5));
    assert.notDeepEqual(a.indices(5), a.indices(6));
    assert.notDeepEqual(a.indices(5), c.indices(5));
    assert.deepEqual([...new DistributedSampler({ size: 5, shuffle: false }).indices(9)], [0, 1, 2, 3, 4]);
  });

  it('rejects bad arguments', () => {
    assert.throws(() => new DistributedSampler({ size: 10, worldSize: 2, rank: 2 }), /rank 2 is not below worldSize 2/);
    assert.throws(() => new DistributedSampler({ size: -1 }), /size must be an integer/);
    assert.throws(() => new DistributedSampler({ size: 4, worldSize: 0 }), /worldSize/);
    assert.throws(() => new DistributedSampler({ size: 4 }).indices(-1), /epoch/);
  });
});

describe('N ranks at batch B make the same global batches as one process at batch N·B', () => {
  const dataset = syntheticClassification({ seed: 1, samples: 103, inputShape: [2], numClasses: 3 });

  /** Per step, the sample indices of each rank's batch (fresh copies: loader buffers are reused). */
  function rankSteps(world: number, batch: number, epoch: number, dropSampler: boolean, dropLoader: boolean, size = dataset.size): number[][][] {
    const loaders = ranks(size, world, { seed: 11, dropLast: dropSampler }).map(
      (s) => new BatchLoader(dataset, s, batch, { dropLast: dropLoader }),
    );
    const perRank = loaders.map((l) => batchIndices(l, epoch));
    for (const steps of perRank) assert.equal(steps.length, perRank[0].length, 'same number of steps on every rank');
    return perRank[0].map((_, step) => perRank.map((steps) => steps[step]));
  }

  function referenceSteps(source: ConstructorParameters<typeof BatchLoader>[1], globalBatch: number, epoch: number, dropLoader: boolean): number[][] {
    return batchIndices(new BatchLoader(dataset, source, globalBatch, { dropLast: dropLoader }), epoch);
  }

  it('holds for every batch, including the last partial one, against the global view', () => {
    for (const size of [103, 96, 7]) {
      for (const world of [1, 2, 3, 4]) {
        for (const batch of [1, 2, 5, 8]) {
          for (const dropSampler of [false, true]) {
            for (const dropLoader of [false, true]) {
              const steps = rankSteps(world, batch, 2, dropSampler, dropLoader, size);
              const sampler = new DistributedSampler({ size, worldSize: world, seed: 11, dropLast: dropSampler });
              const ref = referenceSteps(sampler.globalView(), world * batch, 2, dropLoader);
              const label = `size ${size} world ${world} batch ${batch} dropSampler ${dropSampler} dropLoader ${dropLoader}`;
              assert.equal(steps.length, ref.length, label);
              steps.forEach((shares, step) => {
                assert.deepEqual(sorted(shares.flat()), sorted(ref[step]), `${label} step ${step}`);
                for (const share of shares) assert.equal(share.length, shares[0].length, `${label}: equal shares at step ${step}`);
              });
            }
          }
        }
      }
    }
  });

  it('holds against a plain single-process run when sampler and loader both drop the tail', () => {
    for (const world of [2, 3, 4]) {
      for (const batch of [1, 4, 7]) {
        const steps = rankSteps(world, batch, 0, true, true);
        const single = new DistributedSampler({ size: dataset.size, seed: 11, dropLast: true });
        const ref = referenceSteps(single, world * batch, 0, true);
        assert.equal(steps.length, Math.floor(dataset.size / (world * batch)));
        assert.equal(steps.length, ref.length);
        steps.forEach((shares, step) => assert.deepEqual(sorted(shares.flat()), sorted(ref[step])));
      }
    }
  });

  it('holds against a plain single-process run when the size divides by the world', () => {
    const steps = rankSteps(4, 5, 1, false, false, 96);
    const ref = referenceSteps(new DistributedSampler({ size: 96, seed: 11 }), 20, 1, false);
    assert.equal(ref.at(-1)!.length, 16, 'a partial last global batch');
    assert.equal(steps.length, ref.length);
    steps.forEach((shares, step) => assert.deepEqual(sorted(shares.flat()), sorted(ref[step])));
  });

  it('rank r holds global positions b·N·B + r + j·N of batch b', () => {
    const world = 3;
    const batch = 4;
    const global = new DistributedSampler({ size: 100, worldSize: world, seed: 5 }).globalIndices(0);
    ranks(100, world, { seed: 5 }).forEach((s, r) => {
      batchIndices(new BatchLoader(dataset, s, batch), 0).forEach((b, step) => {
        for (let j = 0; j < b.length; j++) assert.equal(b[j], global[step * world * batch + r + j * world]);
      });
    });
  });
});
