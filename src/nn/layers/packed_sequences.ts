import { concat, slice } from '../../tensor/ops/layout.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Rng } from '../../util/rng.js';
import { type AttentionCache, scaledDotProductAttention } from './attention.js';

/**
 * Packed windows (TRL's `packing=True`, padding-free): several sequences (conversations) one after
 * the other in each row of a batch, each token's position counted in its own sequence, restarting at
 * 0 where the next begins (TRL's position_ids). A model that reads them rotates (or embeds) each
 * token by its own position, and its attention never crosses a sequence: block-diagonal causal
 * attention, computed by splitting q, k and v into each sequence's span and running the ordinary
 * causal kernel on each. That needs no kernel of its own, so it runs forward and backward on every
 * backend, and it skips the blocks a mask would only zero.
 *
 * It rides into the model as the attention context the layers already pass down (AttentionCache:
 * offsets 0, its own `attend`), attached to the token ids (packTokens) by whoever builds the batch.
 */
export class PackedSequences implements AttentionCache {
  readonly offsets: readonly number[] = [0];
  /** Each row's sequences as [start, length], in order. */
  readonly spans: readonly (readonly [number, number])[][];

  /** `positions`: rows × length position ids, row-major; each row starts at 0 and each id is 0 or the one before it + 1. */
  constructor(readonly positions: Int32Array, readonly rows: number, readonly length: number) {
    if (positions.length !== rows * length) throw new Error(`packed sequences: ${positions.length} position ids for ${rows} rows of ${length}`);
    this.spans = Array.from({ length: rows }, (_, n) => rowSpans(positions.subarray(n * length, (n + 1) * length), n));
  }

  /** True when some row holds more than one sequence (else it is plain causal attention). */
  get packed(): boolean {
    return this.spans.some((s) => s.length > 1);
  }

  /** Causal attention of q [N, H, T, D] over k, v [N, Hkv, T, D] within each sequence; [N, H, T, D]. */
  attend(_layer: object, q: Tensor, k: Tensor, v: Tensor, dropout?: { p: number; rng: Rng }): Tensor {
    if (!this.packed) return scaledDotProductAttention(q, k, v, true, dropout);
    const rows = this.spans.map((spans, n) => {
      const [qn, kn, vn] = [q, k, v].map((t) => slice(t, 0, n, n + 1));
      if (spans.length === 1) return scaledDotProductAttention(qn, kn, vn, true, dropout);
      const part = (t: Tensor, [start, len]: readonly [number, number]): Tensor => slice(t, 2, start, start + len);
      return concat(spans.map((s) => scaledDotProductAttention(part(qn, s), part(kn, s), part(vn, s), true, dropout)), 2);
    });
    return rows.length === 1 ? rows[0] : concat(rows, 0);
  }
}

/** A row's sequences: a new one wherever the position id falls back to 0. */
function rowSpans(positions: Int32Array, row: number): [number, number][] {
  const spans: [number, number][] = [];
  positions.forEach((p, t) => {
    if (p === 0) spans.push([t, 0]);
    else if (t === 0 || p !== positions[t - 1] + 1) {
      throw new Error(`packed sequences: row ${row} has position id ${p} at ${t} after ${t === 0 ? 'nothing' : positions[t - 1]} (each row starts at 0 and counts up by 1 within a sequence)`);
    }
    spans[spans.length - 1][1]++;
  });
  return spans;
}

const attached = new WeakMap<Tensor, PackedSequences>();

/** Token ids [N, T] marked as packed windows with these position ids (N·T): the model's forward reads them (packingOf). */
export function packTokens(ids: Tensor, positions: Int32Array): Tensor {
  if (ids.ndim !== 2) throw new Error(`packed sequences: token ids must be [N, T], got [${ids.shape.join(', ')}]`);
  attached.set(ids, new PackedSequences(positions, ids.shape[0], ids.shape[1]));
  return ids;
}

/** The packed sequences these token ids were marked with, if any. */
export function packingOf(ids: Tensor): PackedSequences | undefined {
  return attached.get(ids);
}

/** For a path that runs a model's layers one by one (pipeline stages, ZeRO-3, activation checkpointing): packed ids are refused, not silently attended across. */
export function refusePacking(ids: Tensor, where: string): void {
  if (attached.has(ids)) throw new Error(`--packing: ${where} runs the model layer by layer, which does not carry the packed sequences yet; train without --packing, --pipeline-stages, --zero 3 or --activation-checkpointing`);
}
