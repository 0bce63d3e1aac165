/** llama.cpp's q/k row order (src/nn/interchange/gguf_rope_rows.ts): halves to adjacent pairs and back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reorderRopeRows, reorderRopeRowsInPlace } from '../../../src/nn/interchange/gguf_rope_rows.js';

describe('reorderRopeRows', () => {
  it('puts each head\'s row j beside row half + j, as convert_hf_to_gguf.py\'s permute does', () => {
    // 2 heads of 4 rows, a row of one float: halves [0 1 | 2 3] become pairs [0 2 1 3] per head.
    const halves = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    assert.deepEqual([...reorderRopeRows(halves, 2, 1, 'pairs')], [0, 2, 1, 3, 10, 12, 11, 13]);
  });

  it('moves a row of several elements whole (a quantized row\'s bytes)', () => {
    const halves = Uint8Array.from([0, 0, 1, 1, 2, 2, 3, 3]);
    const pairs = reorderRopeRows(halves, 1, 2, 'pairs');
    assert.ok(pairs instanceof Uint8Array);
    assert.deepEqual([...pairs], [0, 0, 2, 2, 1, 1, 3, 3]);
  });

  it('takes pairs back to halves exactly, for any head count', () => {
    const src = Float32Array.from({ length: 3 * 8 * 5 }, (_, i) => i);
    assert.deepEqual(reorderRopeRows(reorderRopeRows(src, 3, 5, 'pairs'), 3, 5, 'halves'), src);
    assert.notDeepEqual(reorderRopeRows(src, 3, 5, 'halves'), src);
  });

  it('reorders in place as into a new array, for rows of floats and of bytes', () => {
    const floats = Float32Array.from({ length: 3 * 8 * 5 }, (_, i) => i);
    const inPlace = floats.slice();
    assert.equal(reorderRopeRowsInPlace(inPlace, 3, 5, 'halves'), inPlace);
    assert.deepEqual(inPlace, reorderRopeRows(floats, 3, 5, 'halves'));
    const bytes = Uint8Array.from({ length: 2 * 4 * 6 }, (_, i) => i);
    assert.deepEqual(reorderRopeRowsInPlace(bytes.slice(), 2, 6, 'pairs'), reorderRopeRows(bytes, 2, 6, 'pairs'));
  });
});
