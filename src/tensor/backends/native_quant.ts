/**
 * The native backend's quantized-weight kernels (tensor/quant/kernels.ts): the addon's
 * src/native/quant_linear.cc behind the QuantKernels contract. The format travels as its index in
 * QUANT_TYPES (quant_blocks.h QFmt has the same order). Quantizing float32 into blocks is the js
 * reference's but for the K-quants, whose search over scales the addon runs (quant_quantize.cc: byte
 * for byte the reference's, over the threads).
 */
import type { QuantKernels } from '../quant/kernels.js';
import { QUANT_TYPES, type QuantType } from '../quant/formats.js';
import { jsQuantKernels } from './js/quant.js';

type Host = Float32Array | Uint8Array | Int32Array;

/** The addon's quant entry points (src/native/quant_linear.cc). */
export interface QuantAddon {
  quantLinear(format: number, w: Uint8Array, x: Float32Array, M: number, N: number, K: number, y: Float32Array, bias: Float32Array | null, exact?: boolean, bf16?: boolean): void;
  quantLinearInputGrad(format: number, w: Uint8Array, gy: Float32Array, M: number, N: number, K: number, gx: Float32Array, bf16?: boolean): void;
  quantDequantize(format: number, w: Uint8Array, K: number, row0: number, rows: number, out: Float32Array): void;
  quantEmbedding(format: number, w: Uint8Array, ids: Int32Array, K: number, out: Float32Array): void;
  /** x's M rows quantized per block of 32 as the integer products quantize them: int8 codes (as bytes), a scale a block, d·Σq a half block (tests). */
  quantizeActivations(x: Float32Array, M: number, K: number, q: Uint8Array, d: Float32Array, s: Float32Array): void;
  /** The path the latest quantLinear took: "generic" | "avx2" | "avx512-vnni" | "neon-dotprod" | "f16-widened" | "dequant+gemm" | "dequant+gemm-bf16" ("none" before any). */
  lastQuantImpl(): string;
  /**
   * "auto" (integer path up to 16 rows of x, tiles + GEMM past), "dot" or "gemm" for every M: benchmarks
   * and tests. nf4 and f16 have no integer path (nf4's levels are not integers, f16's values are floats): they take the tiles + GEMM under all three (f16 up to 8 rows of x under "auto": its widened thin product).
   */
  setQuantPath(path: string): void;
  /** A Q4_0, Q8_0, Q5_0, Q4_K or Q6_K matrix's rows interleaved in place into q4_0x8, q8_0x8, q5_0x8, q4_kx8 or q6_kx8 where this CPU's products read them: the format's index after, or -1 when left as it was (quant_linear.cc). */
  quantRepack?(format: number, w: Uint8Array, N: number, K: number): number;
  /** x's rows into format's blocks in out, byte for byte the js reference's: false, out untouched, for a format it has no quantizer for (all but Q4_K, Q5_K, Q6_K) or a value past 2^32 or not finite (quant_quantize.cc). */
  quantizeRows?(format: number, x: Float32Array, rows: number, K: number, out: Uint8Array): boolean;
}

/** Whether the loaded addon has the quant kernels (an addon from before them has not). */
export function hasQuantKernels(n: object): n is QuantAddon {
  return typeof (n as Partial<QuantAddon>).quantLinear === 'function';
}

/** The kernels of one format on the addon. */
export function nativeQuantKernels(n: QuantAddon, type: QuantType): QuantKernels<Host> {
  const format = QUANT_TYPES.indexOf(type);
  if (format < 0) throw new RangeError(`native quant kernels: unknown format '${type}'`);
  const js = jsQuantKernels(type);
  return {
    quantLinear: (w, x, M, N, K, y, bias, exact, bf16) =>
      n.quantLinear(format, w as Uint8Array, x as Float32Array, M, N, K, y as Float32Array, (bias as Float32Array | null) ?? null, exact === true, bf16 === true),
    quantLinearInputGrad: (w, gy, M, N, K, gx, bf16) =>
      n.quantLinearInputGrad(format, w as Uint8Array, gy as Float32Array, M, N, K, gx as Float32Array, bf16 === true),
    quantDequantize: (w, K, row0, rows, out) => n.quantDequantize(format, w as Uint8Array, K, row0, rows, out as Float32Array),
    quantQuantize: (x, rows, K, out) => {
      if (!n.quantizeRows?.(format, x as Float32Array, rows, K, out as Uint8Array)) js.quantQuantize(x, rows, K, out);
    },
    quantEmbedding: (w, ids, K, out) => {
      if (!(ids instanceof Int32Array)) throw new TypeError('quantEmbedding: ids must be an Int32Array');
      n.quantEmbedding(format, w as Uint8Array, ids, K, out as Float32Array);
    },
  };
}

/** QuantBackend.repackQuant on the addon (an addon without quantRepack repacks nothing). */
export function nativeRepackQuant(n: QuantAddon, type: QuantType, w: Uint8Array, rows: number, cols: number): QuantType | null {
  if (!n.quantRepack) return null;
  const format = n.quantRepack(QUANT_TYPES.indexOf(type), w, rows, cols);
  return format < 0 ? null : QUANT_TYPES[format];
}
