import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DataError } from '../../src/data/errors.js';
import { parseIdx, readIdxFile } from '../../src/data/idx.js';
import { gzip, idxBytes, tempDir } from './idx-fixtures.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/** Asserts that `fn` throws a DataError for `file` whose message contains every fragment. */
function throwsDataError(fn: () => unknown, file: string, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DataError, `expected DataError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" lacks "${f}"`);
    return true;
  });
}

describe('IDX reader', () => {
  it('reads images and labels', () => {
    const pixels = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
    const images = readIdxFile(tmp.file('imgs', idxBytes([2, 3, 4], pixels)), 'images');
    assert.deepEqual(images.dims, [2, 3, 4]);
    assert.deepEqual([...images.data], [...pixels]);
    const labels = readIdxFile(tmp.file('lbls', idxBytes([3], Uint8Array.of(7, 0, 9))), 'labels');
    assert.deepEqual(labels.dims, [3]);
    assert.deepEqual([...labels.data], [7, 0, 9]);
  });

  it('reports a truncated file with declared and actual bytes', () => {
    const bytes = idxBytes([60000, 28, 28], new Uint8Array(1000 - 16));
    const file = tmp.file('train-images-idx3-ubyte', bytes);
    throwsDataError(
      () => readIdxFile(file, 'images'),
      file,
      'train-images-idx3-ubyte: truncated: header declares 60000×28×28 images (47040016 bytes) but file has 1000 bytes',
    );
  });

  it('reports an oversized file', () => {
    const file = tmp.file('labels-long', idxBytes([4], new Uint8Array(6)));
    throwsDataError(() => readIdxFile(file, 'labels'), file, 'oversized: header declares 4 labels (12 bytes) but file has 14 bytes');
  });

  it('rejects a wrong magic number', () => {
    const bytes = idxBytes([2]);
    bytes[0] = 0x12;
    throwsDataError(() => parseIdx(bytes, 'x', 'labels'), 'x', 'not an IDX file', 'expected 0x00000801');
  });

  it('rejects a data type other than unsigned byte', () => {
    throwsDataError(() => parseIdx(idxBytes([1, 1, 1], new Uint8Array(1), 0x0d), 'f', 'images'), 'f', 'data type 0x0d (float32)', 'expected 0x00000803');
  });

  it('rejects a labels file read as images (dimension count)', () => {
    throwsDataError(() => parseIdx(idxBytes([5]), 'l', 'images'), 'l', 'wrong dimension count 1', 'magic number 0x00000801', 'expected 0x00000803');
  });

  it('rejects a file shorter than its header', () => {
    throwsDataError(() => parseIdx(Uint8Array.of(0, 0), 'a', 'labels'), 'a', 'truncated', 'too short');
    throwsDataError(() => parseIdx(Uint8Array.of(0, 0, 8, 3, 0, 0), 'b', 'images'), 'b', 'truncated', '16-byte IDX header');
  });

  it('reads gzip files and reports decompressed sizes', () => {
    const pixels = Uint8Array.from({ length: 8 }, (_, i) => 10 * i);
    const ok = readIdxFile(tmp.file('imgs.gz', gzip(idxBytes([2, 2, 2], pixels))), 'images');
    assert.deepEqual([...ok.data], [...pixels]);
    const short = tmp.file('short.gz', gzip(idxBytes([3, 2, 2], pixels)));
    throwsDataError(() => readIdxFile(short, 'images'), short, 'truncated', '(28 bytes)', '24 bytes after decompression');
  });

  it('reports corrupt gzip data', () => {
    const whole = gzip(idxBytes([100]));
    const file = tmp.file('cut.gz', whole.subarray(0, whole.length - 10));
    throwsDataError(() => readIdxFile(file, 'labels'), file, 'corrupt or truncated gzip');
  });

  it('accepts an already-decompressed file that kept its .gz name', () => {
    const file = tmp.file('plain.gz', idxBytes([2], Uint8Array.of(1, 2)));
    assert.deepEqual([...readIdxFile(file, 'labels').data], [1, 2]);
  });

  it('names a missing file', () => {
    const file = join(tmp.dir, 'nope');
    throwsDataError(() => readIdxFile(file, 'labels'), file, 'cannot read');
  });
});
