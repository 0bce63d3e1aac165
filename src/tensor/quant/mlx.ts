/**
 * MLX's affine quantization (mlx `quantize`, mode "affine"), groups of 64 along the input axis:
 * w = scale·q + bias, q an unsigned 4- or 8-bit code, scale and bias in the model's 16-bit dtype
 * (bfloat16, or float16 for older conversions).
 *
 * An MLX file keeps three tensors per weight (`X.weight` uint32 words of codes packed little-endian,
 * `X.scales`, `X.biases`); here each group is one block, so a row is blocks like ggml's:
 *
 *   [scale: 2 bytes][bias: 2 bytes][codes: 32 bytes (4-bit: code i in byte i/2, low nibble first) or 64 (8-bit)]
 *
 * which is the files' own bytes regrouped (mlx_folder.ts), nothing re-rounded. Dequantization to
 * float32 rounds the product, then the sum, to float32; MLX's own `dequantize` computes in the scales'
 * dtype (mlxDequantizeHalf gives that). Quantization follows MLX's: the group's extreme of larger
 * magnitude is represented exactly (it is the bias, or a multiple of the scale), codes rounded to
 * nearest even.
 */
import { fromBf16Bits, fromF16Bits, toBf16Bits, toF16Bits } from '../../util/float_formats.js';
import { readBf16, readF16, writeBf16, writeF16 } from './half.js';
import { nearestInt } from './k_fit.js';

const f = Math.fround;

/** The 16-bit dtype an MLX model keeps its scales and biases in. */
export type MlxScaleType = 'bf16' | 'f16';

export const MLX_GROUP = 64;

/** How to read, write and round a value in the scales' dtype. */
const HALVES = {
  bf16: { read: readBf16, write: writeBf16, round: (x: number): number => fromBf16Bits(toBf16Bits(x)) },
  f16: { read: readF16, write: writeF16, round: (x: number): number => fromF16Bits(toF16Bits(x)) },
} as const;

export interface MlxFormat {
  readonly bits: 4 | 8;
  readonly scale: MlxScaleType;
  readonly blockWeights: number;
  readonly blockBytes: number;
  /** The code of weight i of the block at `at`. */
  code(src: Uint8Array, at: number, i: number): number;
  dequantizeBlock(src: Uint8Array, at: number, out: Float32Array, o: number): void;
  /** As MLX's `dequantize` computes it: the product and the sum rounded to the scales' dtype. */
  dequantizeBlockHalf(src: Uint8Array, at: number, out: Float32Array, o: number): void;
  quantizeBlock(x: Float32Array, xi: number, out: Uint8Array, at: number): void;
}

export function mlxFormat(bits: 4 | 8, scale: MlxScaleType): MlxFormat {
  const half = HALVES[scale];
  const code = bits === 4
    ? (src: Uint8Array, at: number, i: number): number => (src[at + 4 + (i >> 1)] >> (4 * (i & 1))) & 0x0f
    : (src: Uint8Array, at: number, i: number): number => src[at + 4 + i];
  const bins = (1 << bits) - 1;
  return {
    bits, scale, code,
    blockWeights: MLX_GROUP,
    blockBytes: 4 + (MLX_GROUP * bits) / 8,
    dequantizeBlock(src, at, out, o) {
      const s = half.read(src, at);
      const b = half.read(src, at + 2);
      for (let i = 0; i < MLX_GROUP; i++) out[o + i] = f(f(s * code(src, at, i)) + b);
    },
    dequantizeBlockHalf(src, at, out, o) {
      const s = half.read(src, at);
      const b = half.read(src, at + 2);
      for (let i = 0; i < MLX_GROUP; i++) out[o + i] = half.round(half.round(s * code(src, at, i)) + b);
    },
    quantizeBlock(x, xi, out, at) {
      let max = -Infinity;
      let min = Infinity;
      for (let i = 0; i < MLX_GROUP; i++) {
        max = Math.max(max, x[xi + i]);
        min = Math.min(min, x[xi + i]);
      }
      // The extreme of larger magnitude is the edge kept exact (MLX's affine_quantize).
      const useMin = Math.abs(min) > Math.abs(max);
      const step = Math.max(f(f(max - min) / bins), f(1e-7));
      let s = useMin ? step : -step;
      const edge = useMin ? min : max;
      const q0 = nearestInt(f(edge / s));
      if (q0 !== 0) s = f(edge / q0);
      const sStored = half.write(out, at, s);
      const bStored = half.write(out, at + 2, q0 === 0 ? 0 : edge);
      for (let i = 0; i < MLX_GROUP; i++) {
        const q = Math.max(0, Math.min(bins, nearestInt(f(f(x[xi + i] - bStored) / sStored))));
        if (bits === 4) {
          const byte = at + 4 + (i >> 1);
          out[byte] = (i & 1) === 0 ? q : out[byte] | (q << 4);
        } else {
          out[at + 4 + i] = q;
        }
      }
    },
  };
}
