/**
 * Weights cast to bfloat16 once, for inference in bf16 (generation's decode). autocast
 * (autocast.ts) otherwise casts every float32 operand for each op call, so a bf16 decode step reads
 * each weight as float32 (4 bytes), writes its bf16 copy (2) and reads that (2): slower than float32
 * itself, and half its time went to the casts (GPT-2 124M, one thread). With a cache in place,
 * grad off, the first use of a weight casts it and every later op reuses the cast.
 *
 * The cache knows its weights by identity (the model's parameters, frozen or not), never an
 * activation. The casts are the weights' values when first used: the caller keeps the cache only
 * while the weights do not change (one generation), and clears it or drops it after.
 */
import type { Tensor } from '../tensor.js';
import { toBf16 } from './cast.js';
import { markUnchanging } from './packed_weights.js';

export class CastCache {
  private readonly weights: Set<Tensor>;
  private readonly casts = new Map<Tensor, Tensor>();

  constructor(weights: Iterable<Tensor>) {
    this.weights = new Set(weights);
  }

  /** x's bf16 cast, made on first use, when x is one of the cache's float32 weights; else null. */
  castOf(x: Tensor): Tensor | null {
    if (!this.weights.has(x) || x.dtype !== 'float32') return null;
    let cast = this.casts.get(x);
    if (cast === undefined) {
      cast = this.makeCast(x);
      // Unchanging while the cache holds it: its products may run on a packed copy (packed_weights.ts).
      markUnchanging(cast);
      this.casts.set(x, cast);
    }
    return cast;
  }

  /** x's cast (a subclass may lay its casts out in memory of its own). */
  protected makeCast(x: Tensor): Tensor {
    return toBf16(x);
  }

  /** Casts held. */
  get size(): number {
    return this.casts.size;
  }

  /** Drops every cast (the next use casts the weight's current values). */
  clear(): void {
    this.casts.clear();
  }
}

let active: CastCache | null = null;

/** The cache autocast consults while grad is off, or null. */
export function activeCastCache(): CastCache | null {
  return active;
}

/**
 * Puts `cache` in place (null: none) and returns the one it replaces; across awaits, as
 * setComputePrecision is, so a caller restores the previous one in a finally.
 */
export function setCastCache(cache: CastCache | null): CastCache | null {
  const before = active;
  active = cache;
  return before;
}
