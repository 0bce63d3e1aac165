/**
 * The quantized weight formats, one row each (ggml's type traits): how many weights a block holds,
 * its bytes, how a block turns into float32 values and back. A quantized weight is a storage whose
 * dtype is one of these names (storage.ts); the kernels (backend.ts QuantKernels) are looked up by
 * it, and nothing above them branches on the format.
 *
 *   q8_0 q4_0 q4_1 q5_0 q5_1    ggml's blocks of 32 (legacy.ts)
 *   q4_k q5_k q6_k              ggml's K-quants, blocks of 256 (k_quants.ts)
 *   mlx4 mlx8                   MLX's affine groups of 64 with bfloat16 scales (mlx.ts)
 *   mlx4_f16 mlx8_f16           the same with float16 scales
 *   nf4                         QLoRA's 4-bit NormalFloat, blocks of 64 (nf4.ts): 33 bytes, an 8-bit
 *                               float scale code c (0: scale 0, else (1 + (c & 7)/8)·2^((c >> 3) − 17))
 *                               then 32 bytes of nibbles (byte 1 + j: weight j low, j + 32 high), each
 *                               a level of bitsandbytes' NF4 code book; w = float32(level·scale);
 *                               4.125 bits a weight, not a GGUF type
 *   f16                         float16 values as read, 32 to a block of 64 bytes (f16.ts): a file's
 *                               F16 matrix held in its own bytes; exact, no integer path (GGUF's F16)
 *   q4_0x8 q8_0x8 q5_0x8        Q4_0, Q8_0, Q5_0, Q4_K, Q6_K with eight rows interleaved a block
 *   q4_kx8 q6_kx8               (rows8.ts): what a generator's load repacks them into where the
 *                               native 512-bit kernels read it; not GGUF types, and a row alone is
 *                               not a span of one
 *
 * A row of a quantized matrix is whole blocks: its length (the input features) is a multiple of
 * the block's weights, and rows follow one another, as in a GGUF file.
 */
import { q4_k, q5_k, q6_k } from './k_quants.js';
import { q4_0, q4_1, q5_0, q5_1, q8_0 } from './legacy.js';
import { f16 } from './f16.js';
import { mlxFormat } from './mlx.js';
import { nf4 } from './nf4.js';
import { ROWS8_OF, type Rows8Type, interleaveRows8, isRows8, rows8Format, rows8Row } from './rows8.js';

/** The formats; the native addon passes a format as its index here (quant_blocks.h QFmt: append only). */
export const QUANT_TYPES = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k', 'mlx4', 'mlx8', 'mlx4_f16', 'mlx8_f16', 'nf4', 'f16', 'q4_0x8', 'q8_0x8', 'q5_0x8', 'q4_kx8', 'q6_kx8'] as const;

export type QuantType = (typeof QUANT_TYPES)[number];

export interface QuantFormat {
  readonly type: QuantType;
  /** ggml's type id (the GGUF file's tensor type), or null for the formats GGUF lacks (MLX's groups, nf4). */
  readonly ggmlType: number | null;
  /** Weights a block holds. */
  readonly blockWeights: number;
  /** Bytes a block takes. */
  readonly blockBytes: number;
  /** Decodes the block at byte `at` into out[o, o + blockWeights). */
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void;
  /** Encodes x[xi, xi + blockWeights) as one block at byte `at`. */
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void;
}

type Codec = Pick<QuantFormat, 'blockWeights' | 'blockBytes' | 'dequantizeBlock' | 'quantizeBlock'>;

const row = (type: QuantType, ggmlType: number | null, codec: Codec): QuantFormat => ({
  type, ggmlType,
  blockWeights: codec.blockWeights,
  blockBytes: codec.blockBytes,
  dequantizeBlock: codec.dequantizeBlock.bind(codec),
  quantizeBlock: codec.quantizeBlock.bind(codec),
});

const FORMATS: Readonly<Record<QuantType, QuantFormat>> = {
  q8_0: row('q8_0', 8, q8_0),
  q4_0: row('q4_0', 2, q4_0),
  q4_1: row('q4_1', 3, q4_1),
  q5_0: row('q5_0', 6, q5_0),
  q5_1: row('q5_1', 7, q5_1),
  q4_k: row('q4_k', 12, q4_k),
  q5_k: row('q5_k', 13, q5_k),
  q6_k: row('q6_k', 14, q6_k),
  mlx4: row('mlx4', null, mlxFormat(4, 'bf16')),
  mlx8: row('mlx8', null, mlxFormat(8, 'bf16')),
  mlx4_f16: row('mlx4_f16', null, mlxFormat(4, 'f16')),
  mlx8_f16: row('mlx8_f16', null, mlxFormat(8, 'f16')),
  nf4: row('nf4', null, nf4),
  f16: row('f16', 1, f16),
  q4_0x8: row('q4_0x8', null, rows8Format('q4_0x8')),
  q8_0x8: row('q8_0x8', null, rows8Format('q8_0x8')),
  q5_0x8: row('q5_0x8', null, rows8Format('q5_0x8')),
  q4_kx8: row('q4_kx8', null, rows8Format('q4_kx8')),
  q6_kx8: row('q6_kx8', null, rows8Format('q6_kx8')),
};

/** Whether a dtype name is a quantized format. */
export function isQuantType(dtype: string): dtype is QuantType {
  return Object.hasOwn(FORMATS, dtype);
}

export function quantFormat(type: QuantType): QuantFormat {
  return FORMATS[type];
}

/** The format whose ggml type id is `id` (F16's: f16), or undefined (F32, BF16 and the types we do not read). */
export function quantFormatOfGgml(id: number): QuantFormat | undefined {
  return Object.values(FORMATS).find((q) => q.ggmlType === id);
}

/** Bits a weight costs in `type` (block bytes over block weights). */
export function bitsPerWeight(type: QuantType): number {
  const q = FORMATS[type];
  return (q.blockBytes * 8) / q.blockWeights;
}

/**
 * Bytes of a [rows, cols] matrix in `type`. A row that is not whole blocks is refused, naming the
 * format and its block (`what` says whose row: a tensor's name).
 */
export function quantBytes(type: QuantType, rows: number, cols: number, what = 'a row'): number {
  const q = FORMATS[type];
  if (cols % q.blockWeights !== 0) {
    throw new RangeError(`${what} of ${cols} values is not a whole number of ${type} blocks (${q.blockWeights} weights each)`);
  }
  return rows * (cols / q.blockWeights) * q.blockBytes;
}

/** Rows [row0, row0 + rows) of a quantized [*, cols] matrix as float32 values into out (rows · cols values). */
export function dequantizeRows(type: QuantType, src: Uint8Array, cols: number, row0: number, rows: number, out: Float32Array): void {
  if (isRows8(type)) return dequantizeRows8(type, src, cols, row0, rows, out);
  const q = FORMATS[type];
  const rowBytes = quantBytes(type, 1, cols);
  const blocks = rows * (cols / q.blockWeights);
  const base = row0 * rowBytes;
  for (let b = 0; b < blocks; b++) q.dequantizeBlock(src, base + b * q.blockBytes, out, b * q.blockWeights);
}

/** A [rows, cols] float32 matrix quantized to `type` (rows · cols / blockWeights blocks). */
export function quantizeRows(type: QuantType, values: Float32Array, cols: number): Uint8Array {
  if (isRows8(type)) return interleaveRows8(type, quantizeRows(ROWS8_OF[type], values, cols), values.length / cols, cols);
  const q = FORMATS[type];
  const rows = values.length / cols;
  const out = new Uint8Array(quantBytes(type, rows, cols));
  const blocks = values.length / q.blockWeights;
  for (let b = 0; b < blocks; b++) q.quantizeBlock(values, b * q.blockWeights, out, b * q.blockBytes);
  return out;
}

/** An interleaved format's rows: each one's blocks gathered from its group, then its row format's values. */
function dequantizeRows8(type: Rows8Type, src: Uint8Array, cols: number, row0: number, rows: number, out: Float32Array): void {
  const row = new Uint8Array(quantBytes(ROWS8_OF[type], 1, cols));
  for (let r = 0; r < rows; r++) {
    rows8Row(type, src, cols, row0 + r, row);
    dequantizeRows(ROWS8_OF[type], row, cols, 0, 1, out.subarray(r * cols, (r + 1) * cols));
  }
}
