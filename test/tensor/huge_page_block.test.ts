/**
 * HugePageBytes (src/tensor/huge_page_block.ts): places carved in order, each whole in one block of
 * at most maxBlock bytes (a typed array holds at most 4 GiB: an 8B Q4_K_M file's blocks are more),
 * none overlapping another, a place larger than a block in one of its own, and a place past the
 * counted total refused. Where the backend cannot advise huge pages there are none.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import { backendFor } from '../../src/tensor/dispatch.js';
import { HugePageBytes } from '../../src/tensor/huge_page_block.js';

const SIZES = [1000, 1000, 1000, 1000, 3000, 100, 5000, 64, 1];
const TOTAL = SIZES.reduce((n, s) => n + HugePageBytes.span(s), 0);

describe('HugePageBytes', () => {
  it('cuts the places into blocks of at most maxBlock bytes, each place whole in one and none overlapping', () => {
    const places = HugePageBytes.on('cpu', TOTAL, 4096);
    if (backendFor({ device: 'cpu', dtype: 'float32' }).adviseHugePages === undefined) {
      assert.equal(places, null);
      return;
    }
    const taken = SIZES.map((n, i) => {
      const place = places!.take(n);
      assert.equal(place.length, n);
      assert.equal(place.byteOffset % 64, 0, `place ${i} starts on a 64-byte line`);
      place.fill(i + 1);
      return place;
    });
    taken.forEach((place, i) => assert.ok(place.every((b) => b === i + 1), `place ${i} kept its bytes (no later place overlaps it)`));
    const blocks = [...new Set(taken.map((p) => p.buffer))];
    // 4 × 1000 fill the first block (4 × 1024 spans), 3000 + 100 the second, 5000 one of its own, 64 + 1 the last.
    assert.deepEqual(blocks.map((b) => b.byteLength), [4096, 4096, 5056, 128]);
    assert.deepEqual(taken.map((p) => blocks.indexOf(p.buffer)), [0, 0, 0, 0, 1, 1, 2, 3, 3]);
    assert.throws(() => places!.take(1), /1 bytes after 12416 past the 12416 the places were counted at/);
  });

  it('makes one block up to 4 GiB less a huge page by default', () => {
    assert.equal(HugePageBytes.MAX_BLOCK, 4 * 2 ** 30 - 2 * 2 ** 20);
    const places = HugePageBytes.on('cpu', 3 * 64);
    if (!places) return;
    const a = places.take(10);
    const b = places.take(100);
    assert.equal(a.buffer, b.buffer);
    assert.equal(a.buffer.byteLength, 3 * 64);
    assert.equal(b.byteOffset, 64);
  });
});
