/**
 * Balanced async-ps (`--strategy async-ps --enable-load-balancing`): workers claim work by push
 * cadence instead of each owning a fixed shard. The run's batches are one sequence — batch g is
 * batch g mod B of epoch ⌊g / B⌋ of the single-process order (the seeded permutation, `batchSize`
 * samples, B batches an epoch) — and a worker trains on a lease of K consecutive batches (K =
 * --push-every), pushes its update, and gets its next lease in the server's answer. A worker twice
 * as fast comes back twice as often, so it trains twice the batches; every worker keeps the same
 * batch size and learning-rate semantics per step, nobody waits for anybody, and the run ends when
 * the pool is used up instead of when the slowest worker has finished its own shard. Every sample
 * is trained on once per epoch whatever the speeds (batches are handed out, never duplicated).
 *
 * Both sides derive the pool and the first leases from what they already agree on (world size,
 * K, steps, data size, seed): worker w starts on batches [(w-1)K, wK); the server hands out the
 * rest in order. An empty lease ends a worker's part; its answer carries the final weights.
 */
import { ShareSampler } from '../../data/share_sampler.js';

export interface Lease {
  /** First batch of the sequence. */
  start: number;
  count: number;
}

/** The run's batch sequence: how many there are and which samples batch g holds. */
export class BatchPool {
  private readonly sampler: ShareSampler;
  /** Batches in the run: what the workers would have taken on fixed shards, capped at the epochs' batches. */
  readonly size: number;

  constructor(o: { dataSize: number; batchSize: number; seed: number; epochs: number; workers: number; stepsPerWorker: number }) {
    this.sampler = new ShareSampler({ size: o.dataSize, globalBatch: o.batchSize, seed: o.seed, shuffle: true });
    this.size = Math.min(o.workers * o.stepsPerWorker, o.epochs * this.sampler.stepsPerEpoch);
  }

  /** Batch g: its epoch and sample indices. */
  batch(g: number): { epoch: number; indices: Int32Array } {
    const perEpoch = this.sampler.stepsPerEpoch;
    const epoch = Math.floor(g / perEpoch);
    return { epoch, indices: this.sampler.indices(epoch, g % perEpoch, [1], 0) };
  }
}

/** Worker w's (1-based) first lease. */
export function firstLease(worker: number, pushEvery: number, poolSize: number): Lease {
  const start = Math.min(poolSize, (worker - 1) * pushEvery);
  return { start, count: Math.min(pushEvery, poolSize - start) };
}

/** The server's cursor over the pool: the next lease goes to whoever pushes next. */
export class LeaseDesk {
  private next: number;
  /** Batches handed out, by worker (for the run's record). */
  readonly granted = new Map<number, number>();

  constructor(private readonly poolSize: number, private readonly pushEvery: number, workers: number) {
    this.next = Math.min(poolSize, workers * pushEvery);
    for (let w = 1; w <= workers; w++) this.granted.set(w, firstLease(w, pushEvery, poolSize).count);
  }

  grant(worker: number): Lease {
    const lease = { start: this.next, count: Math.min(this.pushEvery, this.poolSize - this.next) };
    this.next += lease.count;
    this.granted.set(worker, (this.granted.get(worker) ?? 0) + lease.count);
    return lease;
  }
}
