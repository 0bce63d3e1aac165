/**
 * A generation stage's rows: each decoding sequence's KV cache for the stage's own layers only
 * (generate/kv_cache.ts SequenceCache), keyed by the row id the driver gave it, and the forward
 * of a group of rows through the stage's layers (grad off, in the generation's precision, the
 * weights cast once for the stage's life in bf16).
 */
import { KvCache, SequenceCache } from '../../generate/kv_cache.js';
import { inferenceForward, weightCasts } from '../../generate/inference_forward.js';
import type { CastCache } from '../../tensor/ops/cast_cache.js';
import type { Precision } from '../../tensor/precision.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { GenerationStage } from './stage_model.js';

export class StageRows {
  private readonly caches = new Map<number, SequenceCache>();
  private readonly casts: CastCache | null;

  constructor(readonly stage: GenerationStage, readonly precision: Precision = 'fp32') {
    this.casts = weightCasts(stage, precision);
  }

  /** Rows holding a cache now. */
  get size(): number {
    return this.caches.size;
  }

  /**
   * `input` ([N, T] ids on the first stage, else [N, T, width] activations) through the stage's
   * layers for `rows`; a prefill (T > 1, or a row not seen before) starts that row's cache.
   */
  forward(input: Tensor, rows: readonly number[]): Tensor {
    const T = input.shape[1];
    const caches = rows.map((r) => {
      let c = this.caches.get(r);
      if (!c) this.caches.set(r, (c = new SequenceCache()));
      else if (T > 1) throw new Error(`pipeline stage ${this.stage.from}..${this.stage.end - 1}: row ${r} is prefilled twice`);
      return c;
    });
    const cache = new KvCache(caches);
    try {
      const out = inferenceForward(this.stage, input, cache, this.precision, this.casts);
      cache.advance(T);
      return out;
    } catch (e) {
      if (T > 1) for (const r of rows) this.leave(r);
      throw e;
    }
  }

  /** Frees row `row`'s cache (finished, or its client gone). */
  leave(row: number): void {
    this.caches.get(row)?.dispose();
    this.caches.delete(row);
  }
}
