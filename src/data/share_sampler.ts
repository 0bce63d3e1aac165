/**
 * Deterministic sampling when ranks take unequal shares of each global batch (load balancing).
 *
 * Per epoch the global order is the same seeded permutation of 0..size-1 a single process draws
 * (Rng.derive(seed, epoch), identity without shuffle), cut into global batches of G samples
 * (the last one smaller). Global batch b is split into contiguous slices by per-rank counts: rank
 * r takes positions [b·G + c_0 + … + c_{r-1}, … + c_r). The counts come from the shares (which
 * sum to 1) by largest remainder, so for any shares — even shares that change between steps —
 * the ranks' batches at step b are exactly the single process's batch b, and every sample is seen
 * once per epoch. Nothing is padded or repeated.
 */
import { Rng } from '../util/rng.js';

export interface ShareSamplerOptions {
  size: number;
  /** Samples per step over all ranks. */
  globalBatch: number;
  seed?: number;
  shuffle?: boolean;
}

export class ShareSampler {
  readonly size: number;
  readonly globalBatch: number;
  readonly seed: number;
  readonly shuffle: boolean;
  /** Global batches (steps) per epoch; the last may be partial. */
  readonly stepsPerEpoch: number;
  private cachedEpoch = -1;
  private order: Int32Array = new Int32Array(0);

  constructor(o: ShareSamplerOptions) {
    if (!Number.isSafeInteger(o.size) || o.size < 1) throw new RangeError(`ShareSampler: size must be a positive integer, got ${o.size}`);
    if (!Number.isSafeInteger(o.globalBatch) || o.globalBatch < 1) throw new RangeError(`ShareSampler: globalBatch must be a positive integer, got ${o.globalBatch}`);
    this.size = o.size;
    this.globalBatch = o.globalBatch;
    this.seed = o.seed ?? 0;
    this.shuffle = o.shuffle ?? true;
    this.stepsPerEpoch = Math.ceil(o.size / o.globalBatch);
  }

  /** Rank `rank`'s indices of global batch `batch` of `epoch`, given every rank's share. */
  indices(epoch: number, batch: number, shares: ArrayLike<number>, rank: number): Int32Array {
    if (batch < 0 || batch >= this.stepsPerEpoch) throw new RangeError(`ShareSampler: batch ${batch} outside [0, ${this.stepsPerEpoch})`);
    if (rank < 0 || rank >= shares.length) throw new RangeError(`ShareSampler: rank ${rank} has no share (${shares.length} shares)`);
    const start = batch * this.globalBatch;
    const total = Math.min(this.globalBatch, this.size - start);
    const counts = splitCounts(total, shares);
    let from = start;
    for (let r = 0; r < rank; r++) from += counts[r];
    return this.epochOrder(epoch).subarray(from, from + counts[rank]);
  }

  private epochOrder(epoch: number): Int32Array {
    if (epoch !== this.cachedEpoch) {
      this.order = this.shuffle ? Rng.derive(this.seed, epoch).permutation(this.size) : Int32Array.from({ length: this.size }, (_, i) => i);
      this.cachedEpoch = epoch;
    }
    return this.order;
  }
}

/**
 * `total` split by `shares` (non-negative, not all zero) into integers summing to `total`: floors
 * of the exact parts, then one more to the largest remainders (ties to the lower rank). The same
 * shares give the same counts on every rank.
 */
export function splitCounts(total: number, shares: ArrayLike<number>): Int32Array {
  let sum = 0;
  for (let r = 0; r < shares.length; r++) {
    if (!(shares[r] >= 0) || !Number.isFinite(shares[r])) throw new RangeError(`splitCounts: share ${r} is ${shares[r]}`);
    sum += shares[r];
  }
  if (!(sum > 0)) throw new RangeError('splitCounts: every share is zero');
  const counts = new Int32Array(shares.length);
  const rest: { r: number; frac: number }[] = [];
  let given = 0;
  for (let r = 0; r < shares.length; r++) {
    const exact = (total * shares[r]) / sum;
    counts[r] = Math.floor(exact);
    given += counts[r];
    rest.push({ r, frac: exact - counts[r] });
  }
  rest.sort((a, b) => b.frac - a.frac || a.r - b.r);
  for (let i = 0; given < total; i++, given++) counts[rest[i % rest.length].r]++;
  return counts;
}
