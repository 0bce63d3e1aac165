/**
 * Gradient buckets, as torch DDP cuts them: contiguous ranges of the gradient arena, filled from
 * the arena's end, because backward produces the last layer's gradients first. The first bucket is
 * small (DDP: 1 MB) so communication starts early; the others are capped at `capFloats` (DDP:
 * 25 MB). A parameter larger than the cap gets a bucket of its own; one is never split.
 *
 * Every bucket is one arena range, so it is all-reduced in place with no copy, and since the
 * arena is laid out in registration order, reverse registration order is the order of production.
 */
import type { ArenaEntry } from '../../nn/arena.js';

export interface Bucket {
  /** [start, end) in the arena. */
  start: number;
  end: number;
  /** Indices of the arena entries it holds. */
  entries: number[];
}

export interface BucketSizes {
  /** Cap of every bucket after the first, in floats. */
  capFloats: number;
  /** Cap of the first bucket (the last layers), in floats. */
  firstCapFloats: number;
}

/** torch DDP's defaults: 25 MB buckets, 1 MB first bucket. */
export const DDP_BUCKETS: BucketSizes = { capFloats: (25 << 20) / 4, firstCapFloats: (1 << 20) / 4 };

export function planBuckets(entries: readonly ArenaEntry[], sizes: BucketSizes = DDP_BUCKETS): Bucket[] {
  if (!(sizes.capFloats >= 1 && sizes.firstCapFloats >= 1)) throw new RangeError(`bucket caps must be at least one float (got ${sizes.capFloats}, ${sizes.firstCapFloats})`);
  const buckets: Bucket[] = [];
  let current: Bucket | null = null;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    const cap = buckets.length === 0 ? sizes.firstCapFloats : sizes.capFloats;
    if (current && current.end - e.offset > cap) {
      buckets.push(current);
      current = null;
    }
    if (!current) current = { start: e.offset, end: e.offset + e.size, entries: [] };
    current.start = e.offset;
    current.entries.push(i);
  }
  if (current) buckets.push(current);
  return buckets;
}
