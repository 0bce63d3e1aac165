/**
 * q4_0x8, q8_0x8, q5_0x8, q4_kx8, q6_kx8: a Q4_0, Q8_0, Q5_0, Q4_K or Q6_K matrix with its rows
 * interleaved eight at a time, what a generator's load repacks such a matrix into where the native
 * backend's 512-bit kernels read it (src/native/quant_blocks.h has the layouts, quant_rows8_avx512.cc,
 * quant_rows8_k_avx512.cc and quant_rows8_q6k_avx512.cc the products; llama.cpp's x86 repack is the
 * same idea). Rows 8g..8g+7 are one span, block b of the eight at 8·B·b in it (B the row format's
 * block bytes: 18, 34, 22, 144, 210).
 *
 * The formats of 32 weights a block: their eight fp16 scales (16 bytes); the P = (B − 2) mod 8
 * bytes that precede each row's codes (Q5_0's fifth bits, 4), transposed: byte p of row r at
 * 16 + 8p + r, so byte p of the eight rows is one 64-bit word (the kernel's mask); then chunk c of 64
 * bytes for c < (B − 2 − P)/8, each row's code bytes 8c..8c+7 (row r at 8r).
 *
 * q4_kx8, a super-block of 256 weights of the eight rows (1152 bytes): their d (16 bytes), their dmin
 * (16); then the 64 scales and 64 mins, row r's of group j at index i = 16·⌊j/2⌋ + 2r + (j mod 2):
 * their low four bits at 32 + i (the min's above the scale's), their top two bits at 96 + (i mod 32)
 * (bits 0-1 the scale's and 4-5 the min's for i < 32, bits 2-3 and 6-7 past); then from 128 the
 * nibbles, 256 bytes for each pair of groups 2c and 2c + 1 as four vectors of 64: in vector k, row r's
 * eight bytes at 8r, the first four holding group 2c's codes 8k..8k+3 (low nibbles) and 8k+4..8k+7
 * (high), the next four group 2c + 1's.
 *
 * q6_kx8, a super-block of 256 weights of the eight rows (1680 bytes): their d (16 bytes); the 128
 * signed scales, row r's of group g (16 weights) at 16 + 16·⌊g/2⌋ + 2r + (g mod 2); then from 144,
 * for each block c of 32 weights, 192 bytes as three vectors of 64, in which row r's byte 8r + 4t + s
 * concerns its weights 32c + 16t + 4k + s for k = 0..3: vector v's low six bits hold the code of
 * k = v, its top two bits bits 2v..2v+1 of the code of k = 3.
 *
 * The same bytes as the eight rows, and a span of whole groups of rows is a span of the matrix; a
 * row alone is not one, so its blocks are read a row at a time (rows8Row), never a block at a time.
 * GGUF has no such types: they are layouts of our memory, never of a file.
 */
import { packQ6Codes, packScaleMin, q4_k, q6Code, q6_k, scaleMin } from './k_quants.js';
import { q4_0, q5_0, q8_0 } from './legacy.js';

/** Rows an interleaved group holds. */
export const ROWS8 = 8;

/** The interleaved formats and the row format each is made from. */
export const ROWS8_OF = { q4_0x8: 'q4_0', q8_0x8: 'q8_0', q5_0x8: 'q5_0', q4_kx8: 'q4_k', q6_kx8: 'q6_k' } as const;
export type Rows8Type = keyof typeof ROWS8_OF;

/** Whether a dtype is one of the interleaved formats. */
export function isRows8(type: string): type is Rows8Type {
  return Object.hasOwn(ROWS8_OF, type);
}

/**
 * How an interleaved block of eight rows holds each row's block of the row format: `put` writes row
 * r's B bytes into the group's 8·B, `get` reads them back.
 */
interface GroupBlock {
  readonly weights: number;
  readonly B: number;
  put(q: Uint8Array, group: Uint8Array, r: number): void;
  get(group: Uint8Array, r: number, q: Uint8Array): void;
}

/** Where byte p of row r's prefix lies in an interleaved block (quant_blocks.h qRows8PrefixAt). */
const prefixAt = (p: number, r: number): number => 16 + ROWS8 * p + r;

/** The formats of one fp16 scale and 32 codes a block (the header's first layout). */
function blocksOf32(B: number): GroupBlock {
  const P = (B - 2) % 8, chunks = (B - 2 - P) / 8, codesAt = 16 + ROWS8 * P;
  return {
    weights: 32,
    B,
    put(q, g, r) {
      g.set(q.subarray(0, 2), 2 * r);
      for (let p = 0; p < P; p++) g[prefixAt(p, r)] = q[2 + p];
      for (let c = 0; c < chunks; c++) g.set(q.subarray(2 + P + 8 * c, 10 + P + 8 * c), codesAt + 64 * c + 8 * r);
    },
    get(g, r, q) {
      q.set(g.subarray(2 * r, 2 * r + 2), 0);
      for (let p = 0; p < P; p++) q[2 + p] = g[prefixAt(p, r)];
      for (let c = 0; c < chunks; c++) q.set(g.subarray(codesAt + 64 * c + 8 * r, codesAt + 8 + 64 * c + 8 * r), 2 + P + 8 * c);
    },
  };
}

/** Where row r's scale and min of group j lie among a q4_kx8 super-block's 64 (the header's second layout): byte 32 + this of the low bits. */
const scaleAt = (j: number, r: number): number => 16 * (j >> 1) + 2 * r + (j & 1);

/** Q4_K's super-blocks (the header's second layout): scales and mins split into low and top bits, each pair of groups' nibbles in lane pairs. */
const q4kBlocks: GroupBlock = {
  weights: q4_k.blockWeights,
  B: q4_k.blockBytes,
  put(q, g, r) {
    g.set(q.subarray(0, 2), 2 * r);
    g.set(q.subarray(2, 4), 16 + 2 * r);
    const sc = new Uint8Array(8), m = new Uint8Array(8);
    for (let j = 0; j < 8; j++) [sc[j], m[j]] = scaleMin(q, 4, j);
    for (let j = 0; j < 8; j++) g[32 + scaleAt(j, r)] = (sc[j] & 15) | ((m[j] & 15) << 4);
    // (Group j + 4's index is group j's + 32.)
    for (let j = 0; j < 4; j++) g[96 + scaleAt(j, r)] = (sc[j] >> 4) | ((sc[j + 4] >> 4) << 2) | ((m[j] >> 4) << 4) | ((m[j + 4] >> 4) << 6);
    for (let c = 0; c < 4; c++) {
      for (let k = 0; k < 4; k++) {
        for (let i = 0; i < 4; i++) {
          const first = q[16 + 32 * c + 8 * k + i], second = q[16 + 32 * c + 8 * k + 4 + i], at = 128 + 256 * c + 64 * k + 8 * r + i;
          g[at] = (first & 15) | ((second & 15) << 4);
          g[at + 4] = (first >> 4) | (second & 0xf0);
        }
      }
    }
  },
  get(g, r, q) {
    q.set(g.subarray(2 * r, 2 * r + 2), 0);
    q.set(g.subarray(16 + 2 * r, 18 + 2 * r), 2);
    const sc = new Uint8Array(8), m = new Uint8Array(8);
    for (let j = 0; j < 8; j++) {
      const i = scaleAt(j, r), low = g[32 + i], top = g[96 + (i % 32)] >> (i < 32 ? 0 : 2);
      sc[j] = (low & 15) | ((top & 3) << 4);
      m[j] = (low >> 4) | (((top >> 4) & 3) << 4);
    }
    packScaleMin(sc, m, q, 4);
    for (let c = 0; c < 4; c++) {
      for (let k = 0; k < 4; k++) {
        for (let i = 0; i < 4; i++) {
          const at = 128 + 256 * c + 64 * k + 8 * r + i, even = g[at], odd = g[at + 4];
          q[16 + 32 * c + 8 * k + i] = (even & 15) | ((odd & 15) << 4);
          q[16 + 32 * c + 8 * k + 4 + i] = (even >> 4) | (odd & 0xf0);
        }
      }
    }
  },
};

/** Where row r's scale of group g lies in a q6_kx8 super-block, and its byte s of half t of block c in the first vector (the next two 64 and 128 past it). */
const q6kScaleAt = (g: number, r: number): number => 16 + 16 * (g >> 1) + 2 * r + (g & 1);
const q6kCodeAt = (c: number, t: number, s: number, r: number): number => 144 + 192 * c + 8 * r + 4 * t + s;

/** Q6_K's super-blocks (the header's third layout): each block of 32 weights' codes as three vectors, row r's two groups in lane pairs. */
const q6kBlocks: GroupBlock = {
  weights: q6_k.blockWeights,
  B: q6_k.blockBytes,
  put(q, g, r) {
    g.set(q.subarray(208, 210), 2 * r);
    for (let j = 0; j < 16; j++) g[q6kScaleAt(j, r)] = q[192 + j];
    const codes = Uint8Array.from({ length: 256 }, (_, e) => q6Code(q, 0, e));
    for (let c = 0; c < 8; c++) {
      for (let t = 0; t < 2; t++) {
        for (let s = 0; s < 4; s++) {
          const k = 32 * c + 16 * t + s, at = q6kCodeAt(c, t, s, r);
          for (let v = 0; v < 3; v++) g[at + 64 * v] = codes[k + 4 * v] | (((codes[k + 12] >> (2 * v)) & 3) << 6);
        }
      }
    }
  },
  get(g, r, q) {
    q.set(g.subarray(2 * r, 2 * r + 2), 208);
    for (let j = 0; j < 16; j++) q[192 + j] = g[q6kScaleAt(j, r)];
    const codes = new Uint8Array(256);
    for (let c = 0; c < 8; c++) {
      for (let t = 0; t < 2; t++) {
        for (let s = 0; s < 4; s++) {
          const k = 32 * c + 16 * t + s, at = q6kCodeAt(c, t, s, r);
          for (let v = 0; v < 3; v++) codes[k + 4 * v] = g[at + 64 * v] & 63;
          codes[k + 12] = (g[at] >> 6) | ((g[at + 64] >> 6) << 2) | ((g[at + 128] >> 6) << 4);
        }
      }
    }
    packQ6Codes(codes, q, 0);
  },
};

const LAYOUTS: Readonly<Record<Rows8Type, GroupBlock>> = {
  q4_0x8: blocksOf32(q4_0.blockBytes),
  q8_0x8: blocksOf32(q8_0.blockBytes),
  q5_0x8: blocksOf32(q5_0.blockBytes),
  q4_kx8: q4kBlocks,
  q6_kx8: q6kBlocks,
};

/** A matrix's bytes in `type`'s row format ([rows, cols], rows whole groups of eight) as `type` (a new array). */
export function interleaveRows8(type: Rows8Type, bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  if (rows % ROWS8 !== 0) throw new RangeError(`${type} interleaves rows ${ROWS8} at a time: a matrix of ${rows} rows is not whole groups`);
  const { weights, B, put } = LAYOUTS[type], blocks = cols / weights, rowBytes = blocks * B;
  const out = new Uint8Array(rows * rowBytes);
  for (let n = 0; n < rows; n++) {
    const r = n % ROWS8, group = (n - r) * rowBytes;
    for (let b = 0; b < blocks; b++) {
      const at = n * rowBytes + b * B, to = group + b * ROWS8 * B;
      put(bytes.subarray(at, at + B), out.subarray(to, to + ROWS8 * B), r);
    }
  }
  return out;
}

/** Row n of a `type` matrix of `cols` weights a row, as its blocks of the row format, into out (cols/weights · B bytes). */
export function rows8Row(type: Rows8Type, src: Uint8Array, cols: number, n: number, out: Uint8Array): void {
  const { weights, B, get } = LAYOUTS[type], blocks = cols / weights, r = n % ROWS8;
  const group = (n - r) * blocks * B;
  for (let b = 0; b < blocks; b++) {
    const at = group + b * ROWS8 * B;
    get(src.subarray(at, at + ROWS8 * B), r, out.subarray(b * B, (b + 1) * B));
  }
}

/** An interleaved format's row (formats.ts): its row format's bytes a block; its blocks decoded and made only through whole rows. */
export function rows8Format(type: Rows8Type): { blockWeights: number; blockBytes: number; dequantizeBlock(): void; quantizeBlock(): void } {
  const byRows = (what: 'decoded' | 'made'): never => {
    throw new Error(`${type} interleaves eight rows in each block: its blocks are ${what} a row at a time (formats.ts ${what === 'decoded' ? 'dequantizeRows' : 'quantizeRows'}), not alone`);
  };
  return { blockWeights: LAYOUTS[type].weights, blockBytes: LAYOUTS[type].B, dequantizeBlock: () => byRows('decoded'), quantizeBlock: () => byRows('made') };
}

/** The row format a matrix of `type` is written in (an interleaved format's; the format itself for any other): what a file holds. */
export function rowFormatOf<T extends string>(type: T): T | (typeof ROWS8_OF)[Rows8Type] {
  return isRows8(type) ? ROWS8_OF[type] : type;
}

/** A `type` matrix's bytes ([rows, cols]) in its row format, as a file holds them (a new array). */
export function deinterleaveRows8(type: Rows8Type, bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  const rowBytes = (cols / LAYOUTS[type].weights) * LAYOUTS[type].B;
  const out = new Uint8Array(rows * rowBytes);
  for (let n = 0; n < rows; n++) rows8Row(type, bytes, cols, n, out.subarray(n * rowBytes, (n + 1) * rowBytes));
  return out;
}
