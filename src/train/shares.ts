/**
 * Unequal shares of the global batch (load balancing). The loop asks for every step's shares and
 * reports what it measured; src/balance/ decides them. The loop knows nothing of policies.
 */
import { performance } from 'node:perf_hooks';
import type { Dataset } from '../data/dataset.js';
import { BatchLoader } from '../data/loader.js';
import { ShareSampler } from '../data/share_sampler.js';
import type { AnyBatch } from './objective.js';

export interface BatchShares {
  /**
   * Every rank calls this before each of its steps, in order: the shares of the global batch by
   * data shard (summing to 1), the same on every rank. May communicate (at decision steps).
   */
  sharesAt(step: number): Promise<ArrayLike<number>>;
  /** This rank's busy time in `step` (compute: all but communication and waiting) over its `samples` (not called for 0). */
  observe(step: number, samples: number, computeMs: number): void;
  /** The shares in use (saved in checkpoints). */
  readonly shares?: readonly number[];
  /** A resumed run continues at `step` with the shares its checkpoint saved (every rank reads the same file). */
  restore?(shares: readonly number[], step: number): void;
}

/** A rank's steps when the global batch (`perShardBatch` × shards) is split by shares. */
export class SharedBatches {
  readonly sampler: ShareSampler;
  private readonly loader: BatchLoader;
  private exchangeMs = 0;

  constructor(data: Dataset, perShardBatch: number, shards: number, seed: number, private readonly shard: { index: number; compute: boolean }) {
    const globalBatch = perShardBatch * shards;
    this.sampler = new ShareSampler({ size: data.size, globalBatch, seed, shuffle: true });
    this.loader = new BatchLoader(data, new Int32Array(0), globalBatch);
  }

  /**
   * Time spent deciding shares since the last call: an exchange that waits for the slowest rank,
   * which the loop adds to the step's wait.
   */
  takeExchangeMs(): number {
    const ms = this.exchangeMs;
    this.exchangeMs = 0;
    return ms;
  }

  get stepsPerEpoch(): number {
    return this.sampler.stepsPerEpoch;
  }

  /** (epoch, batch) for each step from `from` (a resumed run) to `totalSteps`; null for a process that computes nothing, or an empty share. */
  async *plan(shares: BatchShares, totalSteps: number, from = 0): AsyncGenerator<[number, AnyBatch | null]> {
    for (let step = from; step < totalSteps; step++) {
      const t0 = performance.now();
      const now = await shares.sharesAt(step);
      this.exchangeMs += performance.now() - t0;
      const epoch = Math.floor(step / this.stepsPerEpoch);
      if (!this.shard.compute) {
        yield [epoch, null];
        continue;
      }
      const picked = this.sampler.indices(epoch, step % this.stepsPerEpoch, now, this.shard.index);
      yield [epoch, picked.length > 0 ? this.loader.batchOf(picked, epoch) : null];
    }
  }
}
