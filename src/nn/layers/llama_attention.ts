import { lastUse } from '../../tensor/handover.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { Module } from '../module.js';
import type { Dropout } from './activation.js';
import { type AttentionCache, cachedAttention, mergeHeads, splitHeads } from './attention.js';
import { Linear } from './linear.js';
import type { FusedAttentionParts } from './llama_fused_decode.js';
import { type MaybeAsync, runModule, settled, then } from './maybe_async.js';
import type { Projections } from './projections.js';
import { RMSNorm } from './rms_norm.js';
import type { RotaryEmbedding } from './rotary.js';

/** The attention's shape: `heads` query heads reading `kvHeads` key/value heads of `headDim` each. */
export interface LlamaAttentionShape {
  width: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Qwen2's biases on q_proj, k_proj and v_proj. */
  qkvBias: boolean;
  /** Qwen3's RMSNorm over each head of q and k (weight [headDim]) before the rotation; its eps. */
  qkNorm: boolean;
  rmsEps: number;
}

/**
 * Llama's causal self-attention with grouped queries (Hugging Face's LlamaAttention, with
 * Qwen2's and Qwen3's options): q_proj gives `heads` heads, k_proj and v_proj `kvHeads`, and query
 * head h reads key/value head ⌊h / (heads / kvHeads)⌋ inside the attention kernel, so keys and
 * values are never repeated. q and k are rotated (rotary positions) after Qwen3's per-head norms.
 *
 * Tensor parallelism splits q/k/v by columns and o_proj by rows: each rank takes heads/T query
 * heads and the kvHeads/T key/value heads they read (rank r's query heads map onto its own kv
 * heads because heads/kvHeads divides heads/T). Qwen3's norm weights stay whole on every rank, their
 * gradients summed over the group (each rank's comes from its heads).
 */
export class LlamaAttention extends Module {
  private readonly q_proj: Module;
  private readonly k_proj: Module;
  private readonly v_proj: Module;
  private readonly o_proj: Module;
  private readonly q_norm: RMSNorm | null;
  private readonly k_norm: RMSNorm | null;
  private readonly heads: number;
  private readonly kvHeads: number;

  constructor(s: LlamaAttentionShape, rng: Rng, private readonly rope: RotaryEmbedding, private readonly drop: Dropout, private readonly split: Projections) {
    super();
    this.heads = s.heads / split.size;
    this.kvHeads = s.kvHeads / split.size;
    this.q_proj = this.registerModule('q_proj', split.columns(s.width, s.heads * s.headDim, rng, 1, s.qkvBias));
    this.k_proj = this.registerModule('k_proj', split.columns(s.width, s.kvHeads * s.headDim, rng, 1, s.qkvBias));
    this.v_proj = this.registerModule('v_proj', split.columns(s.width, s.kvHeads * s.headDim, rng, 1, s.qkvBias));
    this.o_proj = this.registerModule('o_proj', split.rows(s.heads * s.headDim, s.width, rng, false));
    this.q_norm = s.qkNorm ? this.registerModule('q_norm', new RMSNorm(s.headDim, s.rmsEps)) : null;
    this.k_norm = s.qkNorm ? this.registerModule('k_norm', new RMSNorm(s.headDim, s.rmsEps)) : null;
  }

  /**
   * x [N, T, width] → the attention's output [N, T, width] (summed over the group when split). x is
   * not handed over (lastUse): three projections read it, and under bf16 each backward rounds it
   * again from its float32 values. `cache` (generation): each row's new positions start at its offset, and
   * their keys and values join it, grouped kv heads cached once; packed windows (packed_sequences.ts):
   * each token is rotated by its own position and attends within its sequence.
   */
  run(x: Tensor, cache?: AttentionCache): MaybeAsync<Tensor> {
    const offsets = cache?.offsets ?? [0];
    const positions = cache?.positions;
    const rotate = (t: Tensor): Tensor => (positions ? this.rope.applyPositions(t, positions) : this.rope.applyRows(t, offsets));
    const q = rotate(this.normed(this.q_norm, splitHeads(this.q_proj.forward(x), this.heads)));
    const k = rotate(this.normed(this.k_norm, splitHeads(this.k_proj.forward(x), this.kvHeads)));
    const v = splitHeads(this.v_proj.forward(x), this.kvHeads);
    const y = mergeHeads(cachedAttention(this, q, k, v, cache, this.drop.forAttention()));
    return then(runModule(this.o_proj, lastUse(y)), (out) => this.drop.forward(out));
  }

  forward(x: Tensor, cache?: AttentionCache): Tensor {
    return settled(this.run(x, cache), 'llama attention');
  }

  /** What a fused decode step reads (llama_fused_decode.ts); null where the projections are not whole Linear layers (adapters, tensor parallelism) or dropout is live. */
  fusedParts(): FusedAttentionParts | null {
    const [q, k, v, o] = [this.q_proj, this.k_proj, this.v_proj, this.o_proj];
    if (this.split.size !== 1 || this.drop.forAttention() || !(q instanceof Linear && k instanceof Linear && v instanceof Linear && o instanceof Linear)) return null;
    return { cacheKey: this, q, k, v, o, qNorm: this.q_norm, kNorm: this.k_norm, rope: this.rope, heads: this.heads, kvHeads: this.kvHeads };
  }

  private normed(norm: RMSNorm | null, heads: Tensor): Tensor {
    return norm ? norm.forward(heads, this.split.sharedWeight(norm.weight)) : heads;
  }
}
