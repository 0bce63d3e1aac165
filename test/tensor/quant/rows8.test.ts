/**
 * q4_0x8 (src/tensor/quant/rows8.ts): Q4_0's blocks with eight rows interleaved. Its bytes are the
 * eight Q4_0 rows' own, moved: each row reads back as the Q4_0 blocks it was made from, its values
 * Q4_0's bit for bit, and a block alone, or rows not whole groups of eight, are refused by name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bitsPerWeight, dequantizeRows, quantBytes, quantFormat, quantizeRows } from '../../../src/tensor/quant/formats.js';
import { ROWS8, interleaveRows8, rows8Row } from '../../../src/tensor/quant/rows8.js';
import { Rng } from '../../../src/util/rng.js';

function gaussian(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * 0.05);
}

describe('q4_0x8: Q4_0 rows interleaved eight to a group', () => {
  it('lays block b of rows 8g..8g+7 out as their eight scales, then each row\'s code bytes 0-7, then 8-15', () => {
    const [rows, K] = [16, 64];
    const q4 = quantizeRows('q4_0', gaussian(rows * K, 1), K);
    const x8 = interleaveRows8(q4, rows, K);
    assert.equal(x8.length, q4.length);
    const q4Block = (n: number, b: number): Uint8Array => q4.subarray((n * 2 + b) * 18, (n * 2 + b + 1) * 18);
    for (let g = 0; g < 2; g++) {
      for (let b = 0; b < 2; b++) {
        const at = g * 8 * 2 * 18 + b * 144;
        for (let r = 0; r < ROWS8; r++) {
          const q = q4Block(8 * g + r, b);
          assert.deepEqual(x8.subarray(at + 2 * r, at + 2 * r + 2), q.subarray(0, 2), `group ${g} block ${b} row ${r}: scale`);
          assert.deepEqual(x8.subarray(at + 16 + 8 * r, at + 24 + 8 * r), q.subarray(2, 10), `group ${g} block ${b} row ${r}: bytes 0-7`);
          assert.deepEqual(x8.subarray(at + 80 + 8 * r, at + 88 + 8 * r), q.subarray(10, 18), `group ${g} block ${b} row ${r}: bytes 8-15`);
        }
      }
    }
  });

  it('gives each row back as its Q4_0 blocks, and its values as Q4_0\'s bit for bit', () => {
    const [rows, K] = [24, 96];
    const v = gaussian(rows * K, 2);
    const q4 = quantizeRows('q4_0', v, K), x8 = quantizeRows('q4_0x8', v, K);
    assert.deepEqual(x8, interleaveRows8(q4, rows, K));
    const row = new Uint8Array(quantBytes('q4_0', 1, K));
    for (let n = 0; n < rows; n++) {
      rows8Row(x8, K, n, row);
      assert.deepEqual(row, q4.subarray(n * row.length, (n + 1) * row.length), `row ${n}`);
    }
    const [a, b] = [new Float32Array(19 * K), new Float32Array(19 * K)];
    dequantizeRows('q4_0', q4, K, 5, 19, a);
    dequantizeRows('q4_0x8', x8, K, 5, 19, b);
    assert.deepEqual(b, a);
    assert.equal(bitsPerWeight('q4_0x8'), bitsPerWeight('q4_0'));
    assert.equal(quantFormat('q4_0x8').ggmlType, null, 'not a GGUF type');
  });

  it('refuses rows that are not whole groups of eight, and a block read or written alone, saying why', () => {
    assert.throws(() => quantizeRows('q4_0x8', gaussian(5 * 32, 3), 32), /q4_0x8 interleaves rows 8 at a time: a matrix of 5 rows is not whole groups/);
    const q = quantFormat('q4_0x8');
    assert.throws(() => q.dequantizeBlock(new Uint8Array(144), 0, new Float32Array(32), 0), /q4_0x8 interleaves eight rows in each block: its blocks are decoded a row at a time \(formats\.ts dequantizeRows\)/);
    assert.throws(() => q.quantizeBlock(new Float32Array(32), 0, new Uint8Array(18), 0), /its blocks are made a row at a time \(formats\.ts quantizeRows\)/);
  });
});
