import { isGradEnabled } from '../../tensor/autograd.js';
import { backendFor } from '../../tensor/dispatch.js';
import { heldCastOf, lowersToBf16 } from '../../tensor/ops/autocast.js';
import { isQuantType } from '../../tensor/quant/formats.js';
import type { QuantType } from '../../tensor/quant/formats.js';
import type { DeviceBuffer } from '../../tensor/storage.js';
import { Tensor, allocUninit } from '../../tensor/tensor.js';
import type { AttentionCache } from './attention.js';
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
  if (!enabled || !parts || !cache?.reserveDecode || cache.positions) return null;
  if (x.ndim !== 3 || x.shape[0] !== 1 || x.shape[1] !== 1 || x.dtype !== 'float32' || isGradEnabled()) return null;
  const backend = backendFor(x);
  const { attention: a, mlp, inNorm, postNorm } = parts;
  const linears = [a.q, a.k, a.v, a.o, mlp.gate, mlp.up, mlp.down];
  const norms = [inNorm, postNorm, a.qNorm, a.kNorm].filter((n): n is RMSNorm => n !== null);
  if (!backend.llamaDecodeLayer) return null;
  if ([a.o, mlp.gate, mlp.up, mlp.down].some((l) => l.bias !== null) || norms.some((n) => n.eps !== inNorm.eps || n.weight.dtype !== 'float32')) return null;
  const operands = linears.map((l) => productOperand(l.weight, backend.quantTypes));
  if (!operands.every((o): o is ProductOperand => o !== null)) return null;
  const headDim = a.rope.headDim;
  const slot = cache.reserveDecode(a.cacheKey, { heads: a.kvHeads, dim: headDim, device: x.device, dtype: 'float32' });
  if (!slot) return null;
  const { cos, sin } = a.rope.rowAt(slot.positions - 1, x.device);
  const out = new Tensor(allocUninit('float32', x.size, x.device), x.shape);
  backend.llamaDecodeLayer({
    width: x.shape[2], heads: a.heads, kvHeads: a.kvHeads, headDim, intermediate: mlp.gate.weight.shape[0],
    positions: slot.positions, capacity: slot.capacity, eps: inNorm.eps, scale: 1 / Math.sqrt(headDim),
    x: x.buffer, out: out.buffer, inNorm: inNorm.weight.buffer, postNorm: postNorm.weight.buffer,
    qNorm: a.qNorm?.weight.buffer ?? null, kNorm: a.kNorm?.weight.buffer ?? null,
    formats: operands.map((o) => o.format), weights: operands.map((o) => o.buffer),
    biases: [a.q, a.k, a.v].map((l) => l.bias?.buffer ?? null),
    cos, sin, kCache: slot.k, vCache: slot.v, kvBf16: slot.bf16,
  });
  return out;
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
