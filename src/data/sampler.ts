/**
 * Deterministic sharded sampling with torch.utils.data.DistributedSampler's semantics.
 *
 * Per epoch, the *global order* is a permutation of 0..size-1 drawn from Rng.derive(seed, epoch)
 * (identity when shuffle=false), then made divisible by the world size W:
 *   - dropLast=false: padded by wrapping around to the start (repeating samples), like torch;
 *   - dropLast=true:  the last size mod W positions are dropped.
 * Its length T = W × numSamples. Rank r takes global positions r, r+W, r+2W, … (torch's interleaved
 * slicing), so every rank gets numSamples indices.
 *
 * How global batches map to rank batches. A BatchLoader at batch size B over rank r's indices
 * yields rank batch b = global positions { b·W·B + j·W + r : j = 0 … B−1 }. The global batch b of
 * size G = W·B, positions [b·G, b·G + G), is therefore exactly the union over ranks of their batch b:
 * rank r holds the positions of that global batch that are ≡ r (mod W). So W ranks at batch B take
 * the same steps, over the same samples, as one process at batch W·B.
 *
 * The last partial global batch: T and G are both multiples of W, so the remainder of the global
 * order after the full global batches has m·W positions and every rank's last batch has exactly m
 * of them — each rank holds an equal share of every global batch, which keeps mean-reduced losses
 * and gradients equal to the single-process ones. (With BatchLoader's dropLast all ranks drop that
 * batch together.)
 *
 * The single-process reference for an N-rank run (N = W): `new DistributedSampler({ size, worldSize: N, … })
 * .globalView()` at batch size N·B, which sees the same padding/dropping as the ranks. A plain
 * worldSize=1 run sees no padding, so it equals the N-rank run when size is a multiple of N, or when
 * both the sampler and the loader drop the last (partial) batch: then both take ⌊size / (N·B)⌋ full
 * global batches from the same permutation.
 */
import { Rng } from '../util/rng.js';

/** A per-epoch sequence of sample indices; every epoch has the same length. */
export interface IndexSource {
  readonly length: number;
  indices(epoch: number): Int32Array;
}

export interface DistributedSamplerOptions {
  /** Dataset size: indices are drawn from 0..size-1. */
  size: number;
  worldSize?: number;
  rank?: number;
  shuffle?: boolean;
  seed?: number;
  /** Drop the tail that does not divide evenly by worldSize instead of padding by wrapping. */
  dropLast?: boolean;
}

export class DistributedSampler implements IndexSource {
  readonly size: number;
  readonly worldSize: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Indices per rank per epoch. */
  readonly numSamples: number;
  /** Length of the global order: worldSize × numSamples. */
  readonly totalSize: number;

  constructor(options: DistributedSamplerOptions) {
    this.size = checkInt('size', options.size, 0);
    this.worldSize = checkInt('worldSize', options.worldSize ?? 1, 1);
    this.rank = checkInt('rank', options.rank ?? 0, 0);
    if (this.rank >= this.worldSize) {
      throw new RangeError(`DistributedSampler: rank ${this.rank} is not below worldSize ${this.worldSize}`);
    }
    this.shuffle = options.shuffle ?? true;
    this.seed = checkInt('seed', options.seed ?? 0, 0);
    this.dropLast = options.dropLast ?? false;
    this.numSamples = this.dropLast
      ? Math.floor(this.size / this.worldSize)
      : Math.ceil(this.size / this.worldSize);
    this.totalSize = this.numSamples * this.worldSize;
  }

  get length(): number {
    return this.numSamples;
  }

  /** This rank's indices for `epoch`. */
  indices(epoch: number): Int32Array {
    const global = this.globalIndices(epoch);
    const out = new Int32Array(this.numSamples);
    for (let k = 0, p = this.rank; k < out.length; k++, p += this.worldSize) out[k] = global[p];
    return out;
  }

  /** The whole epoch's order, padded or trimmed to totalSize; the union of all ranks' indices. */
  globalIndices(epoch: number): Int32Array {
    checkInt('epoch', epoch, 0);
    const order = this.shuffle ? Rng.derive(this.seed, epoch).permutation(this.size) : identity(this.size);
    return fitLength(order, this.totalSize);
  }

  /** The global order as an index source: what one process replaying all ranks should iterate. */
  globalView(): IndexSource {
    return { length: this.totalSize, indices: (epoch) => this.globalIndices(epoch) };
  }
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/** Trims, or pads by wrapping around (repeatedly if the order is shorter than the padding). */
function fitLength(order: Int32Array, length: number): Int32Array {
  if (length <= order.length) return order.subarray(0, length);
  const out = new Int32Array(length);
  out.set(order);
  for (let i = order.length; i < length; i++) out[i] = order[i % order.length];
  return out;
}

function checkInt(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`DistributedSampler: ${name} must be an integer ≥ ${min}, got ${value}`);
  }
  return value;
}
