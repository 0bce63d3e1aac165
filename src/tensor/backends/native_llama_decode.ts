/**
 * The native backend's fused Llama decode block (backend.ts LlamaDecodeBlock): the addon's
 * src/native/llama_decode.cc, its sizes and the seven formats packed into one Float64Array; and a
 * whole stack's plan and step (LlamaDecodePlan, LlamaDecodeStep).
 */
import type { Buf, LlamaDecodeBlock, LlamaDecodePlan, LlamaDecodeStep, LlamaDecodeWeights, LlamaStackShape } from '../backend.js';
import { QUANT_TYPES, type QuantType } from '../quant/formats.js';

/** The addon's entry point (src/native/llama_decode.cc). */
export interface LlamaDecodeAddon {
  llamaDecodeLayer(sizes: Float64Array, eps: number, scale: number, x: Buf, out: Buf, inNorm: Buf, postNorm: Buf, qNorm: Buf | null, kNorm: Buf | null,
    wq: Buf, wk: Buf, wv: Buf, wo: Buf, wGate: Buf, wUp: Buf, wDown: Buf, bq: Buf | null, bk: Buf | null, bv: Buf | null,
    cos: Buf, sin: Buf, kCache: Buf, vCache: Buf): void;
}

/** The addon's stack entry points (src/native/llama_decode.cc). */
export interface LlamaStackAddon {
  llamaDecodePlan(sizes: Float64Array, eps: number, scale: number, buffers: ReadonlyArray<Buf | null>): LlamaDecodePlan;
  llamaDecodeStack(plan: LlamaDecodePlan, step: Float64Array, x: Buf, out: Buf, cos: Buf, sin: Buf, kCaches: readonly Buf[], vCaches: readonly Buf[]): void;
}

/** Whether the loaded addon has it (one built before it has not). */
export function hasLlamaDecode(n: object): n is LlamaDecodeAddon {
  return typeof (n as Partial<LlamaDecodeAddon>).llamaDecodeLayer === 'function';
}

/** Whether the loaded addon has the stack's entry points. */
export function hasLlamaStack(n: object): n is LlamaStackAddon {
  return typeof (n as Partial<LlamaStackAddon>).llamaDecodePlan === 'function' && typeof (n as Partial<LlamaStackAddon>).llamaDecodeStack === 'function';
}

const PROJECTIONS = 7;
/** The format codes of a float32 and a bf16 weight (llama_decode.cc kFloat32, kBfloat16). */
const FLOAT_CODES: Readonly<Record<string, number>> = { float32: -1, bfloat16: -2 };
const sizes = new Float64Array(7 + PROJECTIONS + 1);

/**
 * A block's seven formats as their codes in the sizes from `at` (llama_decode.cc: −1 float32, −2 bf16,
 * else the QFmt index), its counts of formats, weights and biases checked first (`what` names the block).
 */
function putFormats(what: string, b: LlamaDecodeWeights<Buf>, sizes: Float64Array, at: number): void {
  if (b.formats.length !== PROJECTIONS || b.weights.length !== PROJECTIONS || b.biases.length !== 3) {
    throw new RangeError(`${what}: ${PROJECTIONS} formats and weights and 3 biases, got ${b.formats.length}, ${b.weights.length} and ${b.biases.length}`);
  }
  b.formats.forEach((f, i) => {
    sizes[at + i] = FLOAT_CODES[f] ?? QUANT_TYPES.indexOf(f as QuantType);
  });
}

/** The addon's plan of a stack: [layers, width, heads, kvHeads, headDim, intermediate, each layer's seven format codes] and each layer's 14 buffers from inNorm on. */
export function llamaDecodePlan(n: LlamaStackAddon, shape: LlamaStackShape, blocks: readonly LlamaDecodeWeights<Buf>[]): LlamaDecodePlan {
  const sizes = new Float64Array(6 + PROJECTIONS * blocks.length);
  sizes.set([blocks.length, shape.width, shape.heads, shape.kvHeads, shape.headDim, shape.intermediate]);
  const buffers: Array<Buf | null> = [];
  blocks.forEach((b, l) => {
    putFormats(`llamaDecodePlan (layer ${l})`, b, sizes, 6 + PROJECTIONS * l);
    buffers.push(b.inNorm, b.postNorm, b.qNorm, b.kNorm, ...b.weights, ...b.biases);
  });
  return n.llamaDecodePlan(sizes, shape.eps, shape.scale, buffers);
}

const step = new Float64Array(3);

/** One step of a plan's whole stack. */
export function llamaDecodeStack(n: LlamaStackAddon, plan: LlamaDecodePlan, s: LlamaDecodeStep<Buf>): void {
  step[0] = s.positions; step[1] = s.capacity; step[2] = s.kvBf16 ? 1 : 0;
  n.llamaDecodeStack(plan, step, s.x, s.out, s.cos, s.sin, s.kCaches, s.vCaches);
}

/** One block's call: [width, heads, kvHeads, headDim, intermediate, positions, capacity, the formats' indices (−1: float32, −2: bf16), 1 for a bf16 cache]. */
export function llamaDecodeLayer(n: LlamaDecodeAddon, b: LlamaDecodeBlock<Buf>): void {
  putFormats('llamaDecodeLayer', b, sizes, 7);
  sizes[0] = b.width; sizes[1] = b.heads; sizes[2] = b.kvHeads; sizes[3] = b.headDim; sizes[4] = b.intermediate;
  sizes[5] = b.positions; sizes[6] = b.capacity;
  sizes[7 + PROJECTIONS] = b.kvBf16 ? 1 : 0;
  const [wq, wk, wv, wo, wGate, wUp, wDown] = b.weights;
  const [bq, bk, bv] = b.biases;
  n.llamaDecodeLayer(sizes, b.eps, b.scale, b.x, b.out, b.inNorm, b.postNorm, b.qNorm, b.kNorm, wq, wk, wv, wo, wGate, wUp, wDown, bq, bk, bv,
    b.cos, b.sin, b.kCache, b.vCache);
}
