/**
 * q4_0x8, q8_0x8, q5_0x8, q4_kx8 and q6_kx8 (src/tensor/quant/rows8.ts): Q4_0's, Q8_0's, Q5_0's,
 * Q4_K's and Q6_K's blocks with eight rows interleaved. Their bytes are the eight rows' own, moved: each row reads back as the blocks it was
 * made from, its values its row format's bit for bit, and a block alone, or rows not whole groups of
 * eight, are refused by name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bitsPerWeight, dequantizeRows, quantBytes, quantFormat, quantizeRows } from '../../../src/tensor/quant/formats.js';
import { scaleMin } from '../../../src/tensor/quant/k_quants.js';
import { ROWS8, ROWS8_OF, type Rows8Type, interleaveRows8, rows8Row } from '../../../src/tensor/quant/rows8.js';
import { Rng } from '../../../src/util/rng.js';

function gaussian(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * 0.05);
}

for (const type of ['q4_0x8', 'q8_0x8', 'q5_0x8'] as const) {
  const rowType = ROWS8_OF[type];
  const B = quantFormat(rowType).blockBytes;
  const P = (B - 2) % 8, chunks = (B - 2 - P) / 8, codesAt = 16 + ROWS8 * P;
  describe(`${type}: its block of eight rows`, () => {
    it(`lays block b of rows 8g..8g+7 out as their eight scales, ${P ? `the ${P} bytes before each row's codes transposed (byte p of row r at 16 + 8p + r), ` : ''}then chunk c of each row's code bytes 8c..8c+7 (${chunks} chunks)`, () => {
      const [rows, K] = [16, 64];
      const rowBlocks = quantizeRows(rowType, gaussian(rows * K, 1), K);
      const x8 = interleaveRows8(type, rowBlocks, rows, K);
      assert.equal(x8.length, rowBlocks.length);
      const block = (n: number, b: number): Uint8Array => rowBlocks.subarray((n * 2 + b) * B, (n * 2 + b + 1) * B);
      for (let g = 0; g < 2; g++) {
        for (let b = 0; b < 2; b++) {
          const at = g * 8 * 2 * B + b * 8 * B;
          for (let r = 0; r < ROWS8; r++) {
            const q = block(8 * g + r, b);
            assert.deepEqual(x8.subarray(at + 2 * r, at + 2 * r + 2), q.subarray(0, 2), `group ${g} block ${b} row ${r}: scale`);
            for (let p = 0; p < P; p++) assert.equal(x8[at + 16 + ROWS8 * p + r], q[2 + p], `group ${g} block ${b} row ${r}: byte ${p} before its codes`);
            for (let c = 0; c < chunks; c++) {
              assert.deepEqual(x8.subarray(at + codesAt + 64 * c + 8 * r, at + codesAt + 8 + 64 * c + 8 * r), q.subarray(2 + P + 8 * c, 10 + P + 8 * c), `group ${g} block ${b} row ${r}: chunk ${c}`);
            }
          }
        }
      }
    });
  });
}

/**
 * For a K-quant's interleaved layout: two groups of eight rows of two super-blocks each, made from
 * `rowType`'s blocks, and `check(x8, at, q, r, where)` for each row's super-block q (its bytes in
 * the row format) against the interleaved super-block at `at` of x8.
 */
function eachRowSuperBlock(type: 'q4_kx8' | 'q6_kx8', seed: number, check: (x8: Uint8Array, at: number, q: Uint8Array, r: number, where: string) => void): void {
  const rowType = ROWS8_OF[type], B = quantFormat(rowType).blockBytes;
  const [rows, K] = [16, 512];
  const rowBlocks = quantizeRows(rowType, gaussian(rows * K, seed), K);
  const x8 = interleaveRows8(type, rowBlocks, rows, K);
  assert.equal(x8.length, rowBlocks.length);
  for (let g = 0; g < 2; g++) {
    for (let u = 0; u < 2; u++) {
      for (let r = 0; r < ROWS8; r++) {
        const q = rowBlocks.subarray(((8 * g + r) * 2 + u) * B, ((8 * g + r) * 2 + u + 1) * B);
        check(x8, g * 8 * 2 * B + u * 8 * B, q, r, `group ${g} super-block ${u} row ${r}`);
      }
    }
  }
}

describe('q4_kx8: its super-block of eight rows', () => {
  it('lays super-block u of rows 8g..8g+7 out as their d, their dmin, the scales\' and mins\' low four bits (row r\'s of group j at 32 + i, i = 16·⌊j/2⌋ + 2r + j mod 2), their top two bits (at 96 + i mod 32), then each pair of groups\' nibbles in lane pairs (vector k: row r\'s group 2c codes 8k..8k+3 low and 8k+4..8k+7 high at 8r, group 2c + 1\'s at 8r + 4)', () => {
    eachRowSuperBlock('q4_kx8', 4, (x8, at, q, r, where) => {
      assert.deepEqual(x8.subarray(at + 2 * r, at + 2 * r + 2), q.subarray(0, 2), `${where}: d`);
      assert.deepEqual(x8.subarray(at + 16 + 2 * r, at + 18 + 2 * r), q.subarray(2, 4), `${where}: dmin`);
      for (let j = 0; j < 8; j++) {
        const [sc, m] = scaleMin(q, 4, j);
        const i = 16 * (j >> 1) + 2 * r + (j & 1);
        const low = x8[at + 32 + i], top = x8[at + 96 + (i % 32)] >> (i < 32 ? 0 : 2);
        assert.equal((low & 15) | ((top & 3) << 4), sc, `${where}: group ${j}'s scale`);
        assert.equal((low >> 4) | (((top >> 4) & 3) << 4), m, `${where}: group ${j}'s min`);
      }
      // Q4_K's byte 32c + l: code l of group 2c (low nibble) and of group 2c + 1 (high).
      const code = (j: number, l: number): number => (q[16 + 32 * (j >> 1) + l] >> (4 * (j & 1))) & 15;
      for (let c = 0; c < 4; c++) {
        for (let k = 0; k < 4; k++) {
          for (let h = 0; h < 2; h++) {
            for (let n = 0; n < 4; n++) {
              const byte = x8[at + 128 + 256 * c + 64 * k + 8 * r + 4 * h + n];
              assert.equal(byte & 15, code(2 * c + h, 8 * k + n), `${where}: group ${2 * c + h} code ${8 * k + n}`);
              assert.equal(byte >> 4, code(2 * c + h, 8 * k + 4 + n), `${where}: group ${2 * c + h} code ${8 * k + 4 + n}`);
            }
          }
        }
      }
    });
  });
});

describe('q6_kx8: its super-block of eight rows', () => {
  it('lays super-block u of rows 8g..8g+7 out as their d, their scales (row r\'s of group j at 16 + 16·⌊j/2⌋ + 2r + j mod 2), then for each block c of 32 weights three vectors whose byte 8r + 4t + s holds row r\'s code of weight 32c + 16t + 4v + s in its low six bits and bits 2v..2v+1 of weight 32c + 16t + 12 + s\'s in its top two', () => {
    eachRowSuperBlock('q6_kx8', 5, (x8, at, q, r, where) => {
      assert.deepEqual(x8.subarray(at + 2 * r, at + 2 * r + 2), q.subarray(208, 210), `${where}: d`);
      for (let j = 0; j < 16; j++) assert.equal(x8[at + 16 + 16 * (j >> 1) + 2 * r + (j & 1)], q[192 + j], `${where}: group ${j}'s scale`);
      // Q6_K's weight e (k_quants.ts): ql's nibble and qh's two bits.
      const code = (e: number): number => {
        const [h, i] = [e >> 7, e & 127];
        return ((q[64 * h + (i & 63)] >> (4 * (i >> 6))) & 15) | (((q[128 + 32 * h + (i & 31)] >> (2 * (i >> 5))) & 3) << 4);
      };
      for (let c = 0; c < 8; c++) {
        for (let t = 0; t < 2; t++) {
          for (let s = 0; s < 4; s++) {
            const first = 32 * c + 16 * t + s;
            for (let v = 0; v < 3; v++) {
              const byte = x8[at + 144 + 192 * c + 64 * v + 8 * r + 4 * t + s];
              assert.equal(byte & 63, code(first + 4 * v), `${where}: weight ${first + 4 * v}`);
              assert.equal(byte >> 6, (code(first + 12) >> (2 * v)) & 3, `${where}: bits ${2 * v}-${2 * v + 1} of weight ${first + 12}`);
            }
          }
        }
      }
    });
  });
});

for (const type of Object.keys(ROWS8_OF) as Rows8Type[]) {
  const rowType = ROWS8_OF[type];
  const { blockWeights, blockBytes: B } = quantFormat(rowType);
  describe(`${type}: ${rowType} rows interleaved eight to a group`, () => {
    it(`gives each row back as its ${rowType} blocks, and its values as ${rowType}'s bit for bit`, () => {
      const [rows, K] = [24, 3 * blockWeights];
      const v = gaussian(rows * K, 2);
      const rowBlocks = quantizeRows(rowType, v, K), x8 = quantizeRows(type, v, K);
      assert.deepEqual(x8, interleaveRows8(type, rowBlocks, rows, K));
      const row = new Uint8Array(quantBytes(rowType, 1, K));
      for (let n = 0; n < rows; n++) {
        rows8Row(type, x8, K, n, row);
        assert.deepEqual(row, rowBlocks.subarray(n * row.length, (n + 1) * row.length), `row ${n}`);
      }
      const [a, b] = [new Float32Array(19 * K), new Float32Array(19 * K)];
      dequantizeRows(rowType, rowBlocks, K, 5, 19, a);
      dequantizeRows(type, x8, K, 5, 19, b);
      assert.deepEqual(b, a);
      assert.equal(bitsPerWeight(type), bitsPerWeight(rowType));
      assert.equal(quantFormat(type).ggmlType, null, 'not a GGUF type');
    });

    it('refuses rows that are not whole groups of eight, and a block read or written alone, saying why', () => {
      assert.throws(() => quantizeRows(type, gaussian(5 * blockWeights, 3), blockWeights), new RegExp(`${type} interleaves rows 8 at a time: a matrix of 5 rows is not whole groups`));
      const q = quantFormat(type);
      assert.throws(() => q.dequantizeBlock(new Uint8Array(8 * B), 0, new Float32Array(blockWeights), 0), new RegExp(`${type} interleaves eight rows in each block: its blocks are decoded a row at a time \\(formats\\.ts dequantizeRows\\)`));
      assert.throws(() => q.quantizeBlock(new Float32Array(blockWeights), 0, new Uint8Array(B), 0), /its blocks are made a row at a time \(formats\.ts quantizeRows\)/);
    });
  });
}
