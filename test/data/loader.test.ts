import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ClassificationDataset } from '../../src/data/dataset.js';
import { BatchLoader } from '../../src/data/loader.js';
import { DistributedSampler } from '../../src/data/sampler.js';
import { syntheticRegression } from '../../src/data/synthetic.js';

/** Sample i's input is [1000·i, 1000·i + 1, …], its label i mod 10: easy to check after gathering. */
function indexed(size: number, inputShape: number[] = [2, 3]): ClassificationDataset {
  const width = inputShape.reduce((a, b) => a * b, 1);
  const inputs = new Float32Array(size * width);
  for (let i = 0; i < inputs.length; i++) inputs[i] = 1000 * Math.floor(i / width) + (i % width);
  const labels = Int32Array.from({ length: size }, (_, i) => i % 10);
  return { task: 'classification', name: 'indexed', size, inputShape, numClasses: 10, inputs, labels };
}

describe('BatchLoader', () => {
  const data = indexed(23);

  it('counts and sizes batches, yielding or dropping the partial last one', () => {
    const keep = new BatchLoader(data, new DistributedSampler({ size: 23 }), 5);
    const drop = new BatchLoader(data, new DistributedSampler({ size: 23 }), 5, { dropLast: true });
    assert.equal(keep.numBatches, 5);
    assert.equal(drop.numBatches, 4);
    assert.deepEqual([...keep.batches(0)].map((b) => b.size), [5, 5, 5, 5, 3]);
    assert.deepEqual([...drop.batches(0)].map((b) => b.size), [5, 5, 5, 5]);
    assert.equal(new BatchLoader(data, new Int32Array(0), 4).numBatches, 0);
  });

  it('gathers each sample contiguously with its label', () => {
    const loader = new BatchLoader(data, new DistributedSampler({ size: 23, seed: 9 }), 4);
    const seen: number[] = [];
    for (const b of loader.batches(1)) {
      assert.equal(b.inputs.length, b.size * 6);
      assert.equal(b.labels.length, b.size);
      for (let j = 0; j < b.size; j++) {
        const i = b.indices[j];
        seen.push(i);
        assert.equal(b.labels[j], i % 10);
        assert.deepEqual([...b.inputs.subarray(j * 6, j * 6 + 6)], [0, 1, 2, 3, 4, 5].map((k) => 1000 * i + k));
      }
    }
    assert.deepEqual(seen, [...new DistributedSampler({ size: 23, seed: 9 }).indices(1)]);
  });

  it('double-buffers: batch k stays valid while batch k+1 is used, and is reused for k+2', () => {
    const it = new BatchLoader(data, Int32Array.from({ length: 12 }, (_, i) => 11 - i), 4)[Symbol.iterator]();
    const b0 = it.next().value!;
    const snapshot = [...b0.inputs];
    const b1 = it.next().value!;
    assert.notEqual(b0.inputs.buffer, b1.inputs.buffer);
    assert.deepEqual([...b0.inputs], snapshot, 'batch 0 intact after batch 1');
    assert.deepEqual([...b0.indices], [11, 10, 9, 8]);
    const b2 = it.next().value!;
    assert.equal(b2.inputs.buffer, b0.inputs.buffer);
    assert.deepEqual([...b0.indices], [3, 2, 1, 0], 'batch 0 overwritten by batch 2');
  });

  it('is deterministic and resumes mid-epoch', () => {
    const make = (): BatchLoader<ClassificationDataset> => new BatchLoader(data, new DistributedSampler({ size: 23, seed: 4 }), 3);
    const full: number[][] = [];
    for (const b of make().batches(2)) full.push([...b.indices]);
    const again: number[][] = [];
    for (const b of make().batches(2)) again.push([...b.indices]);
    const resumed: number[][] = [];
    for (const b of make().batches(2, 5)) resumed.push([...b.indices]);
    assert.equal(full.length, 8);
    assert.deepEqual(full, again);
    assert.deepEqual(resumed, full.slice(5));
  });

  it('gathers regression targets', () => {
    const reg = syntheticRegression({ seed: 2, samples: 10, inputDim: 3, outputDim: 2, noise: 0.1 });
    const loader = new BatchLoader(reg, Int32Array.of(7, 2, 9), 2);
    const batches: { targets: number[]; inputs: number[] }[] = [];
    for (const b of loader) batches.push({ targets: [...b.targets], inputs: [...b.inputs] });
    assert.deepEqual(batches[0].targets, [...reg.targets.subarray(14, 16), ...reg.targets.subarray(4, 6)]);
    assert.deepEqual(batches[1].inputs, [...reg.inputs.subarray(27, 30)]);
  });

  it('refuses indices outside the dataset and bad batch sizes', () => {
    assert.throws(() => [...new BatchLoader(data, Int32Array.of(1, 23), 2)], /index 23 at position 1 is outside dataset indexed \(size 23\)/);
    assert.throws(() => new BatchLoader(data, Int32Array.of(1), 0), /batchSize must be a positive integer/);
  });
});
