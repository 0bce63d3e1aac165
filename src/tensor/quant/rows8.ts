/**
 * q4_0x8: a Q4_0 matrix with its rows interleaved eight at a time, what a generator's load repacks
 * a Q4_0 matrix into where the native backend's 512-bit kernels read it (src/native/quant_blocks.h
 * has the layout, quant_rows8_avx512.cc the product; llama.cpp's x86 repack is the same idea).
 * Rows 8g..8g+7 are one span, block b of the eight at 144·b in it: their eight fp16 scales (16
 * bytes), each row's code bytes 0-7 (row r at 8r), then each row's bytes 8-15. The same bytes as
 * the eight Q4_0 rows (4.5 bits a weight), and a span of whole groups of rows is a span of the
 * matrix; a row alone is not one, so its blocks are read a row at a time (rows8Row), never a block
 * at a time. GGUF has no such type: it is a layout of our memory, never of a file.
 */
import { q4_0 } from './legacy.js';

/** Rows a q4_0x8 group interleaves. */
export const ROWS8 = 8;
const Q4_BLOCK = q4_0.blockBytes;
const GROUP_BLOCK = ROWS8 * Q4_BLOCK;

/** Row r's Q4_0 block `q` (18 bytes at `at`) as its share of the group's block at `g`. */
function interleaveBlock(src: Uint8Array, at: number, r: number, out: Uint8Array, g: number): void {
  out.set(src.subarray(at, at + 2), g + 2 * r);
  out.set(src.subarray(at + 2, at + 10), g + 16 + 8 * r);
  out.set(src.subarray(at + 10, at + 18), g + 80 + 8 * r);
}

/** A Q4_0 matrix's bytes, [rows, cols] with rows whole groups of eight, as q4_0x8 (a new array). */
export function interleaveRows8(q4: Uint8Array, rows: number, cols: number): Uint8Array {
  if (rows % ROWS8 !== 0) throw new RangeError(`q4_0x8 interleaves rows ${ROWS8} at a time: a matrix of ${rows} rows is not whole groups`);
  const blocks = cols / 32, rowBytes = blocks * Q4_BLOCK;
  const out = new Uint8Array(rows * rowBytes);
  for (let g = 0; g < rows / ROWS8; g++) {
    for (let b = 0; b < blocks; b++) {
      for (let r = 0; r < ROWS8; r++) interleaveBlock(q4, (ROWS8 * g + r) * rowBytes + b * Q4_BLOCK, r, out, g * ROWS8 * rowBytes + b * GROUP_BLOCK);
    }
  }
  return out;
}

/** Row n of a q4_0x8 matrix of `cols` weights a row, as its Q4_0 blocks, into out (cols/32 · 18 bytes). */
export function rows8Row(src: Uint8Array, cols: number, n: number, out: Uint8Array): void {
  const blocks = cols / 32, r = n % ROWS8;
  const group = Math.floor(n / ROWS8) * ROWS8 * blocks * Q4_BLOCK;
  for (let b = 0; b < blocks; b++) {
    const at = group + b * GROUP_BLOCK, q = b * Q4_BLOCK;
    out.set(src.subarray(at + 2 * r, at + 2 * r + 2), q);
    out.set(src.subarray(at + 16 + 8 * r, at + 24 + 8 * r), q + 2);
    out.set(src.subarray(at + 80 + 8 * r, at + 88 + 8 * r), q + 10);
  }
}

const byRows = (what: string): never => {
  throw new Error(`q4_0x8 interleaves eight rows in each block: its blocks are ${what} a row at a time (formats.ts ${what === 'decoded' ? 'dequantizeRows' : 'quantizeRows'}), not alone`);
};

/** The format's row (formats.ts): Q4_0's bytes a block; its blocks decoded and made only through whole rows. */
export const q4_0x8 = {
  blockWeights: q4_0.blockWeights,
  blockBytes: Q4_BLOCK,
  dequantizeBlock: (): void => byRows('decoded'),
  quantizeBlock: (): void => byRows('made'),
};
