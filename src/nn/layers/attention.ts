import { scaledDotProductAttention as fusedAttention } from '../../tensor/ops/attention.js';
import { permute, reshape, slice } from '../../tensor/ops/layout.js';
import type { DType, Device, DeviceBuffer } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { logitsToKeep } from './logits_to_keep.js';

/**
 * Scaled dot-product attention over heads: q, k, v are [N, H, T, D]; the result is [N, H, T, D].
 * softmax(q kᵀ / √D (+ causal mask)) v as the engine's one fused kernel, which keeps only the
 * probabilities for the backward pass (no score, mask or scaled copies). `dropout` drops attention
 * probabilities (Hugging Face's attn_pdrop / attention_probs_dropout_prob) while training.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, causal: boolean, dropout?: { p: number; rng: Rng }): Tensor {
  return fusedAttention(q, k, v, { causal, dropout });
}

/**
 * A decoder's key/value cache for generation (generate/kv_cache.ts holds one): a batch of sequences
 * (rows), each at its own position. Each attention layer hands in its new q, k, v and gets back the
 * attention over each row's cached and new positions, so a decoded token attends to every earlier
 * position without recomputing it. Training passes one only for packed windows
 * (packed_sequences.ts), whose attention stays inside each packed sequence.
 */
export interface AttentionCache {
  /** Each row's positions cached before this forward: its first new token's position. */
  readonly offsets: readonly number[];
  /** Each token's own position [N·T] where it is not its row's offset + t (packed windows: packed_sequences.ts). */
  readonly positions?: Int32Array;
  /** Stores `layer`'s new keys and values [N, Hkv, T, D]; returns q's attention [N, H, T, D] over each row's positions so far. */
  attend(layer: object, q: Tensor, k: Tensor, v: Tensor, dropout?: { p: number; rng: Rng }): Tensor;
  /** True when the caller reads only each row's last position (generation): the LM head skips the others. */
  readonly lastPositionOnly?: boolean;
  /**
   * For a kernel that stores a decode position's k and v and attends in one call (a fused decoder
   * block, llama_fused_decode.ts): `layer`'s cache with room for one more position, counted as
   * written (in bf16 under a bf16 step, where the backend's bf16 decode attention runs); null where
   * this forward's attention is not that (several rows, several positions, a backend without a
   * decode attention). Optional: packed windows have none.
   */
  reserveDecode?(layer: object, shape: KvShape): DecodeSlot | null;
}

/** A layer's cached keys and values: kv heads of `dim`, on a device, in a dtype. */
export interface KvShape {
  readonly heads: number;
  readonly dim: number;
  readonly device: Device;
  readonly dtype: DType;
}

/** One sequence's k and v storage [heads, capacity, dim] for a layer (float32, or bf16 views: `bf16`); `positions` held once the new one is stored. */
export interface DecodeSlot {
  readonly k: DeviceBuffer;
  readonly v: DeviceBuffer;
  readonly positions: number;
  readonly capacity: number;
  readonly bf16: boolean;
}

/**
 * The hidden states [N, T, C] the LM head turns into logits: all of them, or each row's last when
 * the cache says only those are read — a prefill's head over every prompt position was a third of
 * GPT-2's prefill FLOPs, for logits nobody used — or each row's last k inside withLogitsToKeep
 * (logits_to_keep.ts: transformers' `logits_to_keep`, a trainer scoring completions).
 */
export function headPositions(h: Tensor, cache: AttentionCache | undefined): Tensor {
  const T = h.shape[1];
  const kept = cache?.lastPositionOnly ? 1 : (logitsToKeep() ?? T);
  return kept < T ? slice(h, 1, T - kept, T) : h;
}

/**
 * Attention over the cache (or over the sequence itself without one, causal): the prompt's prefill
 * is the causal forward; a decoded token (T = 1) attends to every cached key of its row, which is
 * exactly causal.
 */
export function cachedAttention(layer: object, q: Tensor, k: Tensor, v: Tensor, cache: AttentionCache | undefined, dropout?: { p: number; rng: Rng }): Tensor {
  if (!cache) return scaledDotProductAttention(q, k, v, true, dropout);
  return cache.attend(layer, q, k, v, dropout);
}

/** [N, T, H·D] → [N, H, T, D]; at T = 1 (a decode step) the same values in the same order: a view, no copy. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [N, T, C] = x.shape;
  if (T === 1) return reshape(x, [N, heads, 1, C / heads]);
  return permute(reshape(x, [N, T, heads, C / heads]), [0, 2, 1, 3]);
}

/** [N, H, T, D] → [N, T, H·D]; at T = 1 a view, as splitHeads. */
export function mergeHeads(x: Tensor): Tensor {
  const [N, H, T, D] = x.shape;
  if (T === 1) return reshape(x, [N, 1, H * D]);
  return reshape(permute(x, [0, 2, 1, 3]), [N, T, H * D]);
}

/** Splits a fused [N, T, 3C] projection into q, k, v, each [N, H, T, D]. */
export function splitQkv(qkv: Tensor, heads: number): [Tensor, Tensor, Tensor] {
  const [N, T, C3] = qkv.shape;
  const C = C3 / 3;
  const all = permute(reshape(qkv, [N, T, 3, heads, C / heads]), [2, 0, 3, 1, 4]);
  const part = (i: number): Tensor => reshape(slice(all, 0, i, i + 1), [N, heads, T, C / heads]);
  return [part(0), part(1), part(2)];
}
