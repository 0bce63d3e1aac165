/**
 * Training FLOPs per token of a decoder language model, for model FLOPs utilisation (MFU):
 *
 *   6 · (matmul parameters, the lm head included even when tied) + 12 · layers · window · heads · headDim
 *
 * The first term is the forward (2 FLOPs per weight per token) and backward (4) of every projection;
 * the second is attention's q·kᵀ and p·v products over the whole window (each 2·T·headDim per query
 * per head forward, twice that backward), counted without causal halving, as PaLM's appendix B does.
 * Norms, rotary, activations, softmax and the optimizer are left out: MFU counts matmul work only.
 */
import type { Gpt2Spec } from './gpt2.js';
import type { ModelSpec } from './index.js';
import type { LlamaSpec } from './llama.js';

/** Weights that take part in a matrix product per token: q/k/v/o, gate/up/down per layer, and the head. */
export function llamaMatmulParams(spec: LlamaSpec): number {
  const q = spec.width * spec.heads * spec.headDim;
  const kv = 2 * spec.width * spec.kvHeads * spec.headDim;
  const o = spec.heads * spec.headDim * spec.width;
  const mlp = 3 * spec.width * spec.intermediate;
  return spec.layers * (q + kv + o + mlp) + spec.width * spec.vocabSize;
}

/** GPT-2's: c_attn (3C²), c_proj (C²) and the 4C MLP (8C²) per layer, and the tied head. */
export function gpt2MatmulParams(spec: Gpt2Spec): number {
  return spec.layers * 12 * spec.width ** 2 + spec.width * spec.vocabSize;
}

/** Training FLOPs per token at a training window of `window` tokens (formula above). */
export function llamaTrainingFlopsPerToken(spec: LlamaSpec, window: number): number {
  return 6 * llamaMatmulParams(spec) + 12 * spec.layers * window * spec.heads * spec.headDim;
}

/** The same for GPT-2 and the Llama family; null for models MFU is not reported for. */
export function trainingFlopsPerToken(spec: ModelSpec, window: number): number | null {
  if (spec.type === 'llama') return llamaTrainingFlopsPerToken(spec, window);
  if (spec.type === 'gpt2') return 6 * gpt2MatmulParams(spec) + 12 * spec.layers * window * spec.width;
  return null;
}
