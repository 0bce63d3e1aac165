import assert from 'node:assert/strict';
import { mkdirSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CIFAR10_MEAN, CIFAR10_STD, loadCifar10 } from '../../src/data/cifar10.js';
import { DataError } from '../../src/data/errors.js';
import { BatchLoader } from '../../src/data/loader.js';
import { tempDir } from '../helpers/cluster.js';
import { cifarRecord, writeCifarDir } from './cifar10-fixtures.js';

let root = '';
before(() => {
  root = tempDir('cifar10');
});
after(() => rmSync(root, { recursive: true, force: true }));

const normalised = (v: number, c: number): number => Math.fround(Math.fround(v / 255) - Math.fround(CIFAR10_MEAN[c])) / Math.fround(CIFAR10_STD[c]);

describe('CIFAR-10 binary files', () => {
  it('reads the five training batches in order and the test batch: labels, [3, 32, 32] planes, per-channel normalisation', () => {
    const dir = writeCifarDir(join(root, 'ok'));
    const { train, test } = loadCifar10({ dataDir: dir });
    assert.equal(train.size, 15);
    assert.equal(test.size, 2);
    assert.deepEqual(train.inputShape, [3, 32, 32]);
    for (const [i, f, k] of [[0, 0, 0], [4, 1, 1], [14, 4, 2]]) {
      const rec = cifarRecord(f, k);
      assert.equal(train.labels[i], rec[0]);
      for (const p of [0, 1023, 1024, 2047, 2048, 3071]) {
        assert.equal(train.inputs[i * 3072 + p], Math.fround(normalised(rec[1 + p], p >> 10)), `sample ${i} pixel ${p}`);
      }
    }
    assert.equal(test.labels[1], cifarRecord(5, 1)[0]);
  });

  it('accepts the folder the archive unpacks into (cifar-10-batches-bin) under --data-dir', () => {
    writeCifarDir(join(root, 'parent', 'cifar-10-batches-bin'));
    assert.equal(loadCifar10({ dataDir: join(root, 'parent') }).train.size, 15);
  });

  it('a missing directory, a missing batch or a truncated file is a DataError naming it, the expected names and where to get them', () => {
    const missing = join(root, 'nowhere');
    assert.throws(() => loadCifar10({ dataDir: missing }), (e: unknown) => e instanceof DataError && e.file === missing &&
      /does not exist.*data_batch_1\.bin.*data_batch_5\.bin and test_batch\.bin.*cifar-10-binary\.tar\.gz/.test(e.message));
    const empty = join(root, 'empty');
    mkdirSync(empty);
    assert.throws(() => loadCifar10({ dataDir: empty }), /has no CIFAR-10 binary files/);
    const dir = writeCifarDir(join(root, 'broken'));
    rmSync(join(dir, 'data_batch_3.bin'));
    assert.throws(() => loadCifar10({ dataDir: dir }), (e: unknown) => e instanceof DataError && e.file === join(dir, 'data_batch_3.bin'));
    const cut = writeCifarDir(join(root, 'cut'));
    truncateSync(join(cut, 'data_batch_2.bin'), 3073 * 2 + 100);
    assert.throws(() => loadCifar10({ dataDir: cut }), (e: unknown) => e instanceof DataError && e.file === join(cut, 'data_batch_2.bin') && /truncated.*3073-byte records/.test(e.message));
  });

  it('augment: crop (pad 4) + flip per sample, the same for (seed, epoch, index) wherever it is batched, new each epoch', () => {
    const dir = writeCifarDir(join(root, 'aug'), 8, 2);
    const plain = loadCifar10({ dataDir: dir }).train;
    const aug = loadCifar10({ dataDir: dir, augment: true, seed: 7 }).train;
    const all = Int32Array.from({ length: aug.size }, (_, i) => i);
    const epoch = (e: number, order: Int32Array, batch: number): Float32Array[] => {
      const out: Float32Array[] = [];
      for (const b of new BatchLoader(aug, order, batch).batches(e)) for (let j = 0; j < b.size; j++) out[b.indices[j]] = b.inputs.slice(j * 3072, (j + 1) * 3072);
      return out;
    };
    const e0 = epoch(0, all, 40);
    const e0again = epoch(0, all.slice().reverse(), 3);
    const e1 = epoch(1, all, 40);
    let changed = 0;
    let differsByEpoch = 0;
    for (let i = 0; i < aug.size; i++) {
      assert.deepEqual(e0[i], e0again[i], `sample ${i}: same epoch, other batching`);
      if (e0[i].some((v, p) => v !== plain.inputs[i * 3072 + p])) changed++;
      if (e0[i].some((v, p) => v !== e1[i][p])) differsByEpoch++;
      // Every output pixel is an input pixel of the same channel or that channel's padding value.
      const src = new Set(plain.inputs.subarray(i * 3072, (i + 1) * 3072));
      for (const v of e0[i].subarray(0, 1024)) assert.ok(src.has(v) || Math.abs(v - -CIFAR10_MEAN[0] / CIFAR10_STD[0]) < 1e-6);
    }
    assert.ok(changed > aug.size * 0.8, `${changed} of ${aug.size} samples augmented`);
    assert.ok(differsByEpoch > aug.size * 0.8);
    // The test set and the dataset without --augment are never touched.
    assert.equal(loadCifar10({ dataDir: dir, augment: true }).test.augment, undefined);
  });
});
