/**
 * q4_0x8, q8_0x8, q5_0x8: a Q4_0, Q8_0 or Q5_0 matrix with its rows interleaved eight at a time, what
 * a generator's load repacks such a matrix into where the native backend's 512-bit kernels read it
 * (src/native/quant_blocks.h has the layout, quant_rows8_avx512.cc the product; llama.cpp's x86
 * repack is the same idea). Rows 8g..8g+7 are one span, block b of the eight at 8·B·b in it (B the
 * row format's block bytes: 18, 34, 22): their eight fp16 scales (16 bytes); the P = (B − 2) mod 8
 * bytes that precede each row's codes (Q5_0's fifth bits, 4), transposed: byte p of row r at
 * 16 + 8p + r, so byte p of the eight rows is one 64-bit word (the kernel's mask); then chunk c of 64
 * bytes for c < (B − 2 − P)/8, each row's code bytes 8c..8c+7 (row r at 8r). The same bytes as the
 * eight rows, and a span of whole groups of rows is a span of the matrix; a row alone is not one, so
 * its blocks are read a row at a time (rows8Row), never a block at a time. GGUF has no such types:
 * they are layouts of our memory, never of a file.
 */
import { q4_0, q5_0, q8_0 } from './legacy.js';

/** Rows an interleaved group holds. */
export const ROWS8 = 8;

/** The interleaved formats and the row format each is made from. */
export const ROWS8_OF = { q4_0x8: 'q4_0', q8_0x8: 'q8_0', q5_0x8: 'q5_0' } as const;
export type Rows8Type = keyof typeof ROWS8_OF;

/** Whether a dtype is one of the interleaved formats. */
export function isRows8(type: string): type is Rows8Type {
  return Object.hasOwn(ROWS8_OF, type);
}

const blockBytesOf = (type: Rows8Type): number => ({ q4_0x8: q4_0, q8_0x8: q8_0, q5_0x8: q5_0 })[type].blockBytes;

/** Where byte p of row r's prefix lies in an interleaved block (quant_blocks.h qRows8PrefixAt). */
const prefixAt = (p: number, r: number): number => 16 + ROWS8 * p + r;

/** A block's layout: B bytes a row, P of them before the codes, the chunks of codes and where they start. */
function layoutOf(type: Rows8Type): { B: number; P: number; chunks: number; codesAt: number } {
  const B = blockBytesOf(type), P = (B - 2) % 8;
  return { B, P, chunks: (B - 2 - P) / 8, codesAt: 16 + ROWS8 * P };
}

/** A matrix's bytes in `type`'s row format ([rows, cols], rows whole groups of eight) as `type` (a new array). */
export function interleaveRows8(type: Rows8Type, bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  if (rows % ROWS8 !== 0) throw new RangeError(`${type} interleaves rows ${ROWS8} at a time: a matrix of ${rows} rows is not whole groups`);
  const { B, P, chunks, codesAt } = layoutOf(type), blocks = cols / 32, rowBytes = blocks * B;
  const out = new Uint8Array(rows * rowBytes);
  for (let n = 0; n < rows; n++) {
    const r = n % ROWS8, group = (n - r) * rowBytes;
    for (let b = 0; b < blocks; b++) {
      const at = n * rowBytes + b * B, to = group + b * ROWS8 * B;
      out.set(bytes.subarray(at, at + 2), to + 2 * r);
      for (let p = 0; p < P; p++) out[to + prefixAt(p, r)] = bytes[at + 2 + p];
      for (let c = 0; c < chunks; c++) out.set(bytes.subarray(at + 2 + P + 8 * c, at + 10 + P + 8 * c), to + codesAt + 64 * c + 8 * r);
    }
  }
  return out;
}

/** Row n of a `type` matrix of `cols` weights a row, as its blocks of the row format, into out (cols/32 · B bytes). */
export function rows8Row(type: Rows8Type, src: Uint8Array, cols: number, n: number, out: Uint8Array): void {
  const { B, P, chunks, codesAt } = layoutOf(type), blocks = cols / 32, r = n % ROWS8;
  const group = (n - r) * blocks * B;
  for (let b = 0; b < blocks; b++) {
    const at = group + b * ROWS8 * B, q = b * B;
    out.set(src.subarray(at + 2 * r, at + 2 * r + 2), q);
    for (let p = 0; p < P; p++) out[q + 2 + p] = src[at + prefixAt(p, r)];
    for (let c = 0; c < chunks; c++) out.set(src.subarray(at + codesAt + 64 * c + 8 * r, at + codesAt + 8 + 64 * c + 8 * r), q + 2 + P + 8 * c);
  }
}

/** An interleaved format's row (formats.ts): its row format's bytes a block; its blocks decoded and made only through whole rows. */
export function rows8Format(type: Rows8Type): { blockWeights: number; blockBytes: number; dequantizeBlock(): void; quantizeBlock(): void } {
  const byRows = (what: 'decoded' | 'made'): never => {
    throw new Error(`${type} interleaves eight rows in each block: its blocks are ${what} a row at a time (formats.ts ${what === 'decoded' ? 'dequantizeRows' : 'quantizeRows'}), not alone`);
  };
  return { blockWeights: 32, blockBytes: blockBytesOf(type), dequantizeBlock: () => byRows('decoded'), quantizeBlock: () => byRows('made') };
}

/** The row format a matrix of `type` is written in (an interleaved format's; the format itself for any other): what a file holds. */
export function rowFormatOf<T extends string>(type: T): T | (typeof ROWS8_OF)[Rows8Type] {
  return isRows8(type) ? ROWS8_OF[type] : type;
}

/** A `type` matrix's bytes ([rows, cols]) in its row format, as a file holds them (a new array). */
export function deinterleaveRows8(type: Rows8Type, bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  const rowBytes = (cols / 32) * blockBytesOf(type);
  const out = new Uint8Array(rows * rowBytes);
  for (let n = 0; n < rows; n++) rows8Row(type, bytes, cols, n, out.subarray(n * rowBytes, (n + 1) * rowBytes));
  return out;
}
