/**
 * float16 rows held as read (a safetensors file's F16 matrix generating in fp32: 2 bytes a weight
 * where widening it took 4), as a block format so that the quantized weights' storage, kernels and
 * loading serve it: a block is 32 consecutive float16 values, little-endian, 64 bytes — the matrix's
 * own bytes, row after row, so a file's tensor is its blocks. Decoding widens exactly (every float16
 * is a float32); encoding rounds to nearest even. No integer codes: its products are the float32
 * ones of the widened values (dequantized tiles + the float32 GEMM), never of x quantized.
 */
import { readF16, writeF16 } from './half.js';

export const f16 = {
  blockWeights: 32,
  blockBytes: 64,
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void {
    for (let j = 0; j < 32; j++) out[o + j] = readF16(src, at + 2 * j);
  },
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void {
    for (let j = 0; j < 32; j++) writeF16(out, at + 2 * j, x[xi + j]);
  },
};

/** Whether a matrix of `shape` can be held as its own f16 bytes: two dimensions, rows of whole blocks. */
export function heldAsF16Blocks(shape: readonly number[]): boolean {
  return shape.length === 2 && shape[1] % f16.blockWeights === 0;
}
