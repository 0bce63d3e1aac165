/**
 * Unequal shares of the global batch (load balancing). The loop asks for every step's shares and
 * reports what it measured; src/balance/ decides them. The loop knows nothing of policies.
 */
import { performance } from 'node:perf_hooks';
import type { Dataset } from '../../data/dataset.js';
import { BatchLoader } from '../../data/loader.js';
import { ShareSampler } from '../../data/share_sampler.js';
import type { AnyBatch } from './objective.js';
import type { StepRecord } from '../../metrics/records.js';
import type { ProcessGroup } from '../../comm/process_group.js';

export interface BatchShares {
  /**
   * Every rank calls this before each of its steps, in order: the shares of the global batch by
   * data shard (summing to 1), the same on every rank. May communicate (at decision steps).
   */
  sharesAt(step: number): Promise<ArrayLike<number>>;
  /**
   * What this rank measured in `step` over its `samples` (not called for 0): `scaledMs`, the work
   * that grows with its share (forward + backward), and `fixedMs`, the rest of its busy time since
   * the previous step ended (gradient exchange, optimizer, the work between steps; never waiting
   * for peers, nor an evaluation) — together, when this rank reached the step's barrier.
   */
  observe(step: number, samples: number, scaledMs: number, fixedMs?: number): void;
  /** The shares in use (saved in checkpoints). */
  readonly shares?: readonly number[];
  /** A resumed run continues at `step` with the shares its checkpoint saved (every rank reads the same file). */
  restore?(shares: readonly number[], step: number): void;
}

/** Batch shares over a membership that changes (elastic all-reduce): the strategy moves them to each new group. */
export interface MemberShares extends BatchShares {
  readonly shares: readonly number[];
  /** The members changed: shares over `group` (this process its rank `index`) from now on, decided at once; every member calls it. */
  regroup(group: ProcessGroup, index: number, step: number, reason: string, globalBatch: number, decide?: boolean): Promise<void>;
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

  /**
   * (epoch, batch) for each step from `from` (a resumed run) to `totalSteps`; null for a process that
   * computes nothing, or an empty share. `offset`: step number minus batch index, for a run resumed
   * from a checkpoint of another number of workers (loop.ts resumeOffset).
   */
  async *plan(shares: BatchShares, totalSteps: number, from = 0, offset = 0): AsyncGenerator<[number, AnyBatch | null]> {
    for (let step = from; step < totalSteps; step++) {
      const t0 = performance.now();
      const now = await shares.sharesAt(step);
      this.exchangeMs += performance.now() - t0;
      const epoch = Math.floor((step - offset) / this.stepsPerEpoch);
      if (!this.shard.compute) {
        yield [epoch, null];
        continue;
      }
      const picked = this.sampler.indices(epoch, (step - offset) % this.stepsPerEpoch, now, this.shard.index);
      yield [epoch, picked.length > 0 ? this.loader.batchOf(picked, epoch) : null];
    }
  }
}

/**
 * When a rank reaches each step's barrier, split for the balancer: the forward + backward of its
 * share (scales with it) and the rest of its busy time since its previous step ended (does not:
 * that step's gradient exchange and optimizer, metrics, the next batch). Time blocked waiting for
 * peers is no one's work, and the leader's evaluations are not the split's doing: both left out.
 */
export class ArrivalClock {
  private lastEnd = NaN;
  private excludedMs = 0;

  /** Time between steps that is not training (an evaluation). */
  exclude(ms: number): void {
    this.excludedMs += ms;
  }

  /** [scaled, fixed] ms of a step just taken; every step must pass through here, in order. */
  split(r: StepRecord): [number, number] {
    const m = r.marks;
    if (!m) return [r.computeMs, 0];
    const scaled = m.reduce - m.start;
    const since = Number.isNaN(this.lastEnd) ? m.start : this.lastEnd;
    const busy = m.end - since - r.waitMs - this.excludedMs;
    this.lastEnd = m.end;
    this.excludedMs = 0;
    return [scaled, Math.max(0, busy - scaled)];
  }
}
