/**
 * The native backend's fused Llama decode block (backend.ts LlamaDecodeBlock): the addon's
 * src/native/llama_decode.cc, its sizes and the seven formats packed into one Float64Array.
 */
import type { Buf, LlamaDecodeBlock } from '../backend.js';
import { QUANT_TYPES, type QuantType } from '../quant/formats.js';

/** The addon's entry point (src/native/llama_decode.cc). */
export interface LlamaDecodeAddon {
  llamaDecodeLayer(sizes: Float64Array, eps: number, scale: number, x: Buf, out: Buf, inNorm: Buf, postNorm: Buf, qNorm: Buf | null, kNorm: Buf | null,
    wq: Buf, wk: Buf, wv: Buf, wo: Buf, wGate: Buf, wUp: Buf, wDown: Buf, bq: Buf | null, bk: Buf | null, bv: Buf | null,
    cos: Buf, sin: Buf, kCache: Buf, vCache: Buf): void;
}

/** Whether the loaded addon has it (one built before it has not). */
export function hasLlamaDecode(n: object): n is LlamaDecodeAddon {
  return typeof (n as Partial<LlamaDecodeAddon>).llamaDecodeLayer === 'function';
}

const PROJECTIONS = 7;
/** The format codes of a float32 and a bf16 weight (llama_decode.cc kFloat32, kBfloat16). */
const FLOAT_CODES: Readonly<Record<string, number>> = { float32: -1, bfloat16: -2 };
const sizes = new Float64Array(7 + PROJECTIONS + 1);

/** One block's call: [width, heads, kvHeads, headDim, intermediate, positions, capacity, the formats' indices (−1: float32, −2: bf16), 1 for a bf16 cache]. */
export function llamaDecodeLayer(n: LlamaDecodeAddon, b: LlamaDecodeBlock<Buf>): void {
  if (b.formats.length !== PROJECTIONS || b.weights.length !== PROJECTIONS || b.biases.length !== 3) {
    throw new RangeError(`llamaDecodeLayer: ${PROJECTIONS} formats and weights and 3 biases, got ${b.formats.length}, ${b.weights.length} and ${b.biases.length}`);
  }
  sizes[0] = b.width; sizes[1] = b.heads; sizes[2] = b.kvHeads; sizes[3] = b.headDim; sizes[4] = b.intermediate;
  sizes[5] = b.positions; sizes[6] = b.capacity;
  b.formats.forEach((f, i) => {
    sizes[7 + i] = FLOAT_CODES[f] ?? QUANT_TYPES.indexOf(f as QuantType);
  });
  sizes[7 + PROJECTIONS] = b.kvBf16 ? 1 : 0;
  const [wq, wk, wv, wo, wGate, wUp, wDown] = b.weights;
  const [bq, bk, bv] = b.biases;
  n.llamaDecodeLayer(sizes, b.eps, b.scale, b.x, b.out, b.inNorm, b.postNorm, b.qNorm, b.kNorm, wq, wk, wv, wo, wGate, wUp, wDown, bq, bk, bv,
    b.cos, b.sin, b.kCache, b.vCache);
}
