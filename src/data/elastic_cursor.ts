/**
 * Where an elastic run stands in its data: an epoch and an offset into that epoch's global order
 * (the same seeded permutation as DistributedSampler's, unpadded). Each step takes the next
 * `members × batchSize` positions — the last global batch of an epoch is whatever remains — and
 * member r of n takes positions offset + r, offset + r + n, … of it (DistributedSampler's
 * interleaving, so with a constant world it reads the same samples). Because the split is made
 * per step from the current member count, a change of members re-shards the rest of the epoch
 * with no sample lost or taken twice; restoring a committed cursor replays exactly the steps after it.
 * With batch shares (load balancing) member r takes instead the r-th contiguous slice of the global
 * batch, cut by the shares (share_sampler.ts splitCounts): the global batch is the same.
 */
import { Rng } from '../util/rng.js';
import { splitCounts } from './share_sampler.js';

export interface CursorPosition {
  epoch: number;
  offset: number;
}

export class ElasticCursor {
  private order: Int32Array | null = null;
  private orderEpoch = -1;

  constructor(readonly size: number, readonly seed: number, public position: CursorPosition = { epoch: 0, offset: 0 }) {}

  /** Samples consumed since the start of the run. */
  get consumed(): number {
    return this.position.epoch * this.size + this.position.offset;
  }

  /**
   * This member's indices of the next global batch and that batch's place, then moves past it.
   * `rank` of `members`, `batchSize` samples per member.
   */
  take(rank: number, members: number, batchSize: number, shares?: ArrayLike<number>): { epoch: number; offset: number; global: number; indices: Int32Array } {
    const { epoch, offset } = this.position;
    const global = Math.min(members * batchSize, this.size - offset);
    const order = this.orderOf(epoch);
    const mine: number[] = [];
    if (shares && shares.length === members) {
      const counts = splitCounts(global, shares);
      let from = offset;
      for (let r = 0; r < rank; r++) from += counts[r];
      for (let p = from; p < from + counts[rank]; p++) mine.push(order[p]);
    } else {
      for (let p = offset + rank; p < offset + global; p += members) mine.push(order[p]);
    }
    const next = offset + global;
    this.position = next >= this.size ? { epoch: epoch + 1, offset: 0 } : { epoch, offset: next };
    return { epoch, offset, global, indices: Int32Array.from(mine) };
  }

  private orderOf(epoch: number): Int32Array {
    if (this.orderEpoch !== epoch) {
      this.order = Rng.derive(this.seed, epoch).permutation(this.size);
      this.orderEpoch = epoch;
    }
    return this.order!;
  }
}
