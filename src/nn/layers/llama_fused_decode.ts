import { isGradEnabled } from '../../tensor/autograd.js';
import { backendFor } from '../../tensor/dispatch.js';
import { lowersToBf16 } from '../../tensor/ops/autocast.js';
import { isQuantType } from '../../tensor/quant/formats.js';
import type { QuantType } from '../../tensor/quant/formats.js';
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
 * is the ops' bit for bit: the ops stay the path wherever this one does not apply (training, bf16,
 * LoRA adapters, tensor parallelism, several rows, bf16-held weights, a backend without the call).
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
  if (x.ndim !== 3 || x.shape[0] !== 1 || x.shape[1] !== 1 || x.dtype !== 'float32' || isGradEnabled() || lowersToBf16('linear')) return null;
  const backend = backendFor(x);
  const { attention: a, mlp, inNorm, postNorm } = parts;
  const linears = [a.q, a.k, a.v, a.o, mlp.gate, mlp.up, mlp.down];
  const norms = [inNorm, postNorm, a.qNorm, a.kNorm].filter((n): n is RMSNorm => n !== null);
  const served = (w: Tensor): boolean => w.dtype === 'float32' || (isQuantType(w.dtype) && backend.quantTypes?.includes(w.dtype) === true);
  if (!backend.llamaDecodeLayer || !linears.every((l) => served(l.weight))) return null;
  if ([a.o, mlp.gate, mlp.up, mlp.down].some((l) => l.bias !== null) || norms.some((n) => n.eps !== inNorm.eps || n.weight.dtype !== 'float32')) return null;
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
    formats: linears.map((l) => l.weight.dtype as QuantType | 'float32'), weights: linears.map((l) => l.weight.buffer),
    biases: [a.q, a.k, a.v].map((l) => l.bias?.buffer ?? null),
    cos, sin, kCache: slot.k, vCache: slot.v,
  });
  return out;
}
