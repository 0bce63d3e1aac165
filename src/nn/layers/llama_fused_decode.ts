import { isGradEnabled } from '../../tensor/autograd.js';
import { backendFor } from '../../tensor/dispatch.js';
import { heldCastOf, lowersToBf16 } from '../../tensor/ops/autocast.js';
import { isQuantType } from '../../tensor/quant/formats.js';
import type { QuantType } from '../../tensor/quant/formats.js';
import type { LlamaDecodeBlock, LlamaDecodePlan, LlamaDecodeWeights, LlamaStackShape } from '../../tensor/backend.js';
import type { DeviceBuffer } from '../../tensor/storage.js';
import { Tensor, allocUninit } from '../../tensor/tensor.js';
import type { AttentionCache, DecodeSlot, KvShape } from './attention.js';
import type { Linear } from './linear.js';
import type { RMSNorm } from './rms_norm.js';
import type { RotaryEmbedding } from './rotary.js';

/**
 * A Llama block's decode step for one sequence in one backend call (backend.ts LlamaDecodeBlock;
 * src/native/llama_decode.cc), its weights quantized or float32. At batch 1 a block's twenty-odd
 * ops each cost a few microseconds of JavaScript, tensors and N-API crossing around little
 * arithmetic; on SmolLM2-135M's shape at Q4_0, one thread, that was about a quarter of a token's
 * time. The call runs the same kernels on the same values in the same order, so the block's output
 * is the ops' bit for bit — in a bf16 step too (x rounded to bf16 before each float weight's held
 * cast, the cache in bf16) — and the ops stay the path wherever this one does not apply (training,
 * LoRA adapters, tensor parallelism, several rows, bf16-held weights in a float32 step, weights
 * cast per call, a backend without the call).
 */

/** The attention's side of a block (LlamaAttention.fusedParts). */
export interface FusedAttentionParts {
  /** The module the KV cache keys this layer's keys and values by. */
  readonly cacheKey: object;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  /** Qwen3's per-head norms. */
  readonly qNorm: RMSNorm | null;
  readonly kNorm: RMSNorm | null;
  readonly rope: RotaryEmbedding;
  readonly heads: number;
  readonly kvHeads: number;
}

/** The MLP's side of a block (LlamaMlp.fusedParts). */
export interface FusedMlpParts {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
}

export interface FusedBlockParts {
  readonly attention: FusedAttentionParts;
  readonly mlp: FusedMlpParts;
  readonly inNorm: RMSNorm;
  readonly postNorm: RMSNorm;
}

let enabled = true;

/** Turns the fused step on or off (tests and benchmarks hold it against the ops); returns the previous setting. */
export function setFusedDecode(on: boolean): boolean {
  const before = enabled;
  enabled = on;
  return before;
}

/**
 * The block's output for x [1, 1, width] at the cache's next position, its k and v stored, when the
 * fused call applies; else null (nothing done, the cache untouched) and the caller runs the ops.
 */
export function fusedDecodeBlock(parts: FusedBlockParts | null, x: Tensor, cache: AttentionCache | undefined): Tensor | null {
  if (!enabled || !parts || !cache?.reserveDecode || cache.positions || !isDecodeRow(x)) return null;
  const backend = backendFor(x);
  if (!backend.llamaDecodeLayer) return null;
  const weights = blockWeights(parts, backend.quantTypes);
  if (!weights) return null;
  const slot = cache.reserveDecode(parts.attention.cacheKey, kvShapeOf(parts, x));
  if (!slot) return null;
  return runBlock(backend.llamaDecodeLayer, parts, weights, slot, x);
}

/**
 * A whole stack of blocks' decode step in one backend call (backend.ts llamaDecodeStack), where
 * every block takes the fused call (`blocks`: their parts asked for only when x is a decode row)
 * in a float32 step: the blocks' weights are checked and held once, in a plan kept for
 * `owner` (the model) until a weight, norm or bias is a different buffer, and each step passes the
 * caches and the rotary row alone. At batch 1 the per-block calls' argument checks took
 * SmolLM2-135M ~145 µs a token and the JavaScript around them ~210 µs more (~8 % of a Q4_0 token,
 * the calls timed from JavaScript and inside the addon). Null (nothing done) where it does not apply.
 */
export function fusedDecodeStack(owner: object, blocks: ReadonlyArray<{ fusedParts(): FusedBlockParts | null }>, x: Tensor, cache: AttentionCache | undefined): Tensor | null {
  if (!enabled || !cache?.reserveDecode || cache.positions || !isDecodeRow(x) || lowersToBf16('linear')) return null;
  const backend = backendFor(x);
  const { llamaDecodePlan, llamaDecodeStack, llamaDecodeLayer } = backend;
  if (!llamaDecodePlan || !llamaDecodeStack || !llamaDecodeLayer) return null;
  const parts = stackParts(blocks);
  if (!parts) return null;
  const held = heldPlan(owner, parts, backend.quantTypes, llamaDecodePlan);
  if (!held) return null;
  const slots = reserveSlots(cache, parts, x);
  if (!slots) return null;
  const first = slots[0];
  if (!slots.every((s) => s.positions === first.positions && s.capacity === first.capacity && s.bf16 === first.bf16)) {
    // Caches at different places (never made so by a generation): block by block, each at its own.
    return parts.reduce((h, p, i) => runBlock(llamaDecodeLayer, p, held.blocks[i], slots[i], h), x);
  }
  const { cos, sin } = parts[0].attention.rope.rowAt(first.positions - 1, x.device);
  const out = new Tensor(allocUninit('float32', x.size, x.device), x.shape);
  llamaDecodeStack(held.plan, {
    positions: first.positions, capacity: first.capacity, kvBf16: first.bf16, x: x.buffer, out: out.buffer, cos, sin,
    kCaches: slots.map((s) => s.k), vCaches: slots.map((s) => s.v),
  });
  return out;
}

/** x is one row of one position in float32, outside a gradient: a batch-1 decode step's. */
function isDecodeRow(x: Tensor): boolean {
  return x.ndim === 3 && x.shape[0] === 1 && x.shape[1] === 1 && x.dtype === 'float32' && !isGradEnabled();
}

/**
 * Every block's parts, where each has them and all share one shape; else null. Built by push, never
 * by `map`: an array `map` makes is packed in the interpreter and holey in optimised code, and a
 * step that met the other kind deoptimised this function just after its 20-23 ms of optimising
 * (SmolLM2-135M, bench:generate's timed run, `--trace-opt --trace-deopt`).
 */
function stackParts(blocks: ReadonlyArray<{ fusedParts(): FusedBlockParts | null }>): FusedBlockParts[] | null {
  const parts: FusedBlockParts[] = [];
  for (const b of blocks) {
    const p = b.fusedParts();
    if (!p || (parts.length > 0 && !sameShape(p, parts[0]))) return null;
    parts.push(p);
  }
  return parts.length > 0 ? parts : null;
}

/** Each block's slot at the step's position, or null where the cache refuses the first (nothing reserved). */
function reserveSlots(cache: AttentionCache, parts: readonly FusedBlockParts[], x: Tensor): DecodeSlot[] | null {
  const slots: DecodeSlot[] = [];
  for (const p of parts) {
    const slot = cache.reserveDecode?.(p.attention.cacheKey, kvShapeOf(p, x));
    if (!slot) {
      // The same cache and shape for every block: only the first can be refused (nothing reserved yet).
      if (slots.length > 0) throw new Error(`fusedDecodeStack: the cache took blocks 0-${slots.length - 1} of a step and refused block ${slots.length}`);
      return null;
    }
    slots.push(slot);
  }
  return slots;
}

/** The KV cache's shape of a block's layer. */
function kvShapeOf(parts: FusedBlockParts, x: Tensor): KvShape {
  return { heads: parts.attention.kvHeads, dim: parts.attention.rope.headDim, device: x.device, dtype: 'float32' };
}

/** One block's fused call at its own slot. */
function runBlock(call: (b: LlamaDecodeBlock<DeviceBuffer>) => void, parts: FusedBlockParts, weights: LlamaDecodeWeights<DeviceBuffer>, slot: DecodeSlot, x: Tensor): Tensor {
  const { attention: a, mlp, inNorm } = parts;
  const headDim = a.rope.headDim;
  const { cos, sin } = a.rope.rowAt(slot.positions - 1, x.device);
  const out = new Tensor(allocUninit('float32', x.size, x.device), x.shape);
  call({
    width: x.shape[2], heads: a.heads, kvHeads: a.kvHeads, headDim, intermediate: mlp.gate.weight.shape[0],
    positions: slot.positions, capacity: slot.capacity, eps: inNorm.eps, scale: 1 / Math.sqrt(headDim),
    x: x.buffer, out: out.buffer, ...weights, cos, sin, kCache: slot.k, vCache: slot.v, kvBf16: slot.bf16,
  });
  return out;
}

/**
 * A block's weights, norms and biases as the fused call takes them, or null where it does not apply:
 * biases on o, gate, up or down, norms of other epsilons or dtypes, or a weight the step would not
 * multiply by as it is (productOperand).
 */
function blockWeights(parts: FusedBlockParts, quantTypes: readonly QuantType[] | undefined): LlamaDecodeWeights<DeviceBuffer> | null {
  const { attention: a, mlp, inNorm, postNorm } = parts;
  const norms = [inNorm, postNorm, a.qNorm, a.kNorm].filter((n): n is RMSNorm => n !== null);
  if ([a.o, mlp.gate, mlp.up, mlp.down].some((l) => l.bias !== null) || norms.some((n) => n.eps !== inNorm.eps || n.weight.dtype !== 'float32')) return null;
  const operands = [a.q, a.k, a.v, a.o, mlp.gate, mlp.up, mlp.down].map((l) => productOperand(l.weight, quantTypes));
  if (!operands.every((o): o is ProductOperand => o !== null)) return null;
  return {
    inNorm: inNorm.weight.buffer, postNorm: postNorm.weight.buffer, qNorm: a.qNorm?.weight.buffer ?? null, kNorm: a.kNorm?.weight.buffer ?? null,
    formats: operands.map((o) => o.format), weights: operands.map((o) => o.buffer), biases: [a.q, a.k, a.v].map((l) => l.bias?.buffer ?? null),
  };
}

/** Whether two blocks share what a stack's plan holds once: sizes, heads, the norms' epsilon and the rotary table. */
function sameShape(p: FusedBlockParts, first: FusedBlockParts): boolean {
  const [a, b] = [p.attention, first.attention];
  return a.heads === b.heads && a.kvHeads === b.kvHeads && a.rope === b.rope && p.inNorm.eps === first.inNorm.eps &&
    p.mlp.gate.weight.shape[0] === first.mlp.gate.weight.shape[0] && p.inNorm.weight.shape[0] === first.inNorm.weight.shape[0];
}

/** A plan and the blocks' weights it was made from. */
interface HeldPlan {
  plan: LlamaDecodePlan;
  blocks: LlamaDecodeWeights<DeviceBuffer>[];
  quantTypes: readonly QuantType[] | undefined;
}

const plans = new WeakMap<object, HeldPlan>();

/** The plan held for `owner` if every buffer of `parts` is still the one it was made from, else a new one (null where a block's weights do not fit the call). */
function heldPlan(owner: object, parts: readonly FusedBlockParts[], quantTypes: readonly QuantType[] | undefined,
  makePlan: (shape: LlamaStackShape, blocks: readonly LlamaDecodeWeights<DeviceBuffer>[]) => LlamaDecodePlan): HeldPlan | null {
  const held = plans.get(owner);
  if (held && held.quantTypes === quantTypes && held.blocks.length === parts.length && parts.every((p, i) => madeFrom(p, held.blocks[i]))) return held;
  const blocks: LlamaDecodeWeights<DeviceBuffer>[] = [];
  for (const p of parts) {
    const w = blockWeights(p, quantTypes);
    if (!w) return null;
    blocks.push(w);
  }
  const a = parts[0].attention;
  const shape = { width: parts[0].inNorm.weight.shape[0], heads: a.heads, kvHeads: a.kvHeads, headDim: a.rope.headDim, intermediate: parts[0].mlp.gate.weight.shape[0], eps: parts[0].inNorm.eps, scale: 1 / Math.sqrt(a.rope.headDim) };
  const made: HeldPlan = { plan: makePlan(shape, blocks), blocks, quantTypes };
  plans.set(owner, made);
  return made;
}

/**
 * Whether a block's weights, norms and biases are still the buffers `w` (blockWeights' of it in a
 * float32 step) holds: compared where they lie, as a step does it for every block (no arrays made).
 */
function madeFrom(p: FusedBlockParts, w: LlamaDecodeWeights<DeviceBuffer>): boolean {
  const { attention: a, mlp } = p;
  const [ws, bs] = [w.weights, w.biases];
  return a.q.weight.buffer === ws[0] && a.k.weight.buffer === ws[1] && a.v.weight.buffer === ws[2] && a.o.weight.buffer === ws[3] &&
    mlp.gate.weight.buffer === ws[4] && mlp.up.weight.buffer === ws[5] && mlp.down.weight.buffer === ws[6] &&
    p.inNorm.weight.buffer === w.inNorm && p.postNorm.weight.buffer === w.postNorm &&
    (a.qNorm?.weight.buffer ?? null) === w.qNorm && (a.kNorm?.weight.buffer ?? null) === w.kNorm &&
    (a.q.bias?.buffer ?? null) === bs[0] && (a.k.bias?.buffer ?? null) === bs[1] && (a.v.bias?.buffer ?? null) === bs[2];
}

/** A product's weight as the call takes it, and its format. */
interface ProductOperand {
  format: QuantType | 'float32' | 'bfloat16';
  buffer: DeviceBuffer;
}

/**
 * The weight the linear op would multiply by in this step: its blocks (x float32 in any step), its
 * float32 values in a float32 step, or in a bf16 step autocast's operand — a bf16 weight itself, or
 * a float32 one's cast held by the step's cast cache (a model's held casts, a generation's) or by
 * its frozen registration; null where the op would do otherwise (a cast made for one call, a
 * bf16-held weight in a float32 step, a format the backend's products lack), and the ops run.
 */
function productOperand(w: Tensor, quantTypes: readonly QuantType[] | undefined): ProductOperand | null {
  if (isQuantType(w.dtype)) return quantTypes?.includes(w.dtype) ? { format: w.dtype, buffer: w.buffer } : null;
  if (!lowersToBf16('linear')) return w.dtype === 'float32' ? { format: 'float32', buffer: w.buffer } : null;
  const cast = w.dtype === 'bfloat16' ? w : w.dtype === 'float32' ? heldCastOf(w) : null;
  return cast ? { format: 'bfloat16', buffer: cast.buffer } : null;
}
