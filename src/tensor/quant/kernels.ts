/**
 * The kernels of a quantized weight (formats.ts), one set per format: what a backend that runs the
 * format writes, registered in the kernel registry under the format's dtype (dispatch.ts), so an
 * op asks for (name, device, weight dtype) and never branches on the format (ggml's type traits).
 *
 * A weight W is [N, K] (out features, in features), rows of whole blocks, in its format's bytes;
 * everything else is float32 (ids int32). The product of a few rows of x (decode) may run on x
 * quantized per block (as llama.cpp does: Q8 activations, integer dot products), so it differs from
 * the exact product by that rounding: each kernel says its bound where it is tested.
 */
import type { QuantType } from './formats.js';

export interface QuantKernels<B> {
  /**
   * y [M, N] = x [M, K] · Wᵀ (+ bias [N]): a linear layer's forward. `exact` (a training step) asks
   * for the product of x itself at every M, never of x quantized: gradients then are the float ones.
   * `bf16` (a bf16 step) gives the product over x itself (the exact one, or more rows than the
   * integer path takes) autocast's operands: x and W's dequantized values rounded to bf16, summed in float32.
   */
  quantLinear(w: B, x: B, M: number, N: number, K: number, y: B, bias: B | null, exact?: boolean, bf16?: boolean): void;
  /** gx [M, K] += gy [M, N] · W: the input's gradient through the frozen weight (its tiles dequantized in turn); `bf16` as quantLinear's. */
  quantLinearInputGrad(w: B, gy: B, M: number, N: number, K: number, gx: B, bf16?: boolean): void;
  /** out [rows, K] = rows [row0, row0 + rows) of W as float32, as gguf-py dequantizes them. */
  quantDequantize(w: B, K: number, row0: number, rows: number, out: B): void;
  /** out = x [rows, K] (float32) in the format's blocks (ggml's reference quantization; MLX's for its groups). */
  quantQuantize(x: B, rows: number, K: number, out: B): void;
  /** out [n, K] = the rows of W that ids [n] name (an embedding table stored quantized). */
  quantEmbedding(w: B, ids: B, K: number, out: B): void;
}

/** A backend's quantized formats and each one's kernels (a backend without them runs none). */
export interface QuantBackend<B> {
  readonly quantTypes: readonly QuantType[];
  quantKernels(type: QuantType): QuantKernels<B>;
  /**
   * Where this backend's products read a layout of its own faster (native: a Q4_0, Q8_0, Q5_0, Q4_K
   * or Q6_K matrix's rows interleaved by eight, q4_0x8, q8_0x8, q5_0x8, q4_kx8, q6_kx8), `w`'s blocks of [rows, cols]
   * repacked into it in place; the format they hold after, or null when left as they were. Asked
   * only of bytes a load owns, never of a file's mapped pages.
   */
  repackQuant?(type: QuantType, w: B, rows: number, cols: number): QuantType | null;
}

/** Every quant kernel's name: what dispatch.ts registers per format (the type below keeps it whole). */
export const QUANT_KERNEL_NAMES = ['quantLinear', 'quantLinearInputGrad', 'quantDequantize', 'quantQuantize', 'quantEmbedding'] as const;

type MissingQuant = Exclude<keyof QuantKernels<unknown>, (typeof QUANT_KERNEL_NAMES)[number]>;
const everyQuantOpListed: [MissingQuant] extends [never] ? true : MissingQuant = true;
void everyQuantOpListed;
