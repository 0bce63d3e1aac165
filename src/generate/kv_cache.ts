/**
 * The key/value cache of one generation (batch of N sequences of equal length): per attention layer
 * the keys and values [N, Hkv, T, D] of every position so far, grouped kv heads cached once (the
 * attention kernel maps query heads onto them). The model's cached forward (`forward(ids, cache)`)
 * appends each layer's new positions; `advance` then moves the offset past them.
 */
import type { AttentionCache } from '../nn/layers/attention.js';
import { noGrad } from '../tensor/autograd.js';
import { concat } from '../tensor/ops/layout.js';
import type { Tensor } from '../tensor/tensor.js';

export class KvCache implements AttentionCache {
  private readonly layers = new Map<object, { k: Tensor; v: Tensor }>();
  private cached = 0;

  /** Positions every layer holds: the next forward's first position. */
  get offset(): number {
    return this.cached;
  }

  extend(layer: object, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const held = this.layers.get(layer);
    const length = held ? held.k.shape[2] : 0;
    if (length !== this.cached) throw new Error(`KvCache: a layer already holds ${length} positions at offset ${this.cached} (call advance() after each forward)`);
    const next = held ? noGrad(() => ({ k: concat([held.k, k.detach()], 2), v: concat([held.v, v.detach()], 2) })) : { k: k.detach(), v: v.detach() };
    this.layers.set(layer, next);
    return next;
  }

  /** Moves the offset past the `tokens` positions the last forward appended to every layer. */
  advance(tokens: number): void {
    for (const { k } of this.layers.values()) {
      if (k.shape[2] !== this.cached + tokens) throw new Error(`KvCache: advance(${tokens}) from ${this.cached}, but a layer holds ${k.shape[2]} positions`);
    }
    this.cached += tokens;
  }
}
