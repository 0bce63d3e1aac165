/**
 * Applies a policy across a cluster (the loop's BatchShares). At a decision step every rank sends
 * what it measured (speed.ts: per-sample and fixed times, samples per step) to all (one small all-gather), the deciding rank — rank 0: the allreduce
 * leader or the parameter server — runs the policy and broadcasts the shares, and every rank uses
 * them from that step on. Shares travel as float32 and every rank, the decider included, uses the
 * received values, so all ranks split every global batch identically. Between decisions nothing
 * is sent.
 */
import type { ProcessGroup } from '../comm/process_group.js';
import type { MemberShares } from '../train/loop/shares.js';
import type { BalancePolicy, Measured } from './policy.js';
import { equalShares } from './shares.js';
import { SpeedMeter } from './speed.js';
import type { CapacityMeter } from './capacity.js';
import { SmolError } from '../util/errors.js';

export const DECIDER = 0;

/** A change of shares, as events.jsonl records it (`rebalance`). */
export interface RebalanceEvent {
  step: number;
  policy: string;
  reason: string;
  /** By data shard (for ps: worker rank − 1). */
  old_shares: number[];
  shares: number[];
  /** ms per sample by shard, as the decision saw them (the trends). */
  ms_per_sample: number[];
  /** ms per step that does not scale with the share, by shard (the trends). */
  fixed_ms: number[];
  /** Standard deviation of each shard's busy time per step since the last decision (ms). */
  jitter_ms: number[];
  /** The CPU capacity each shard was planned with (capacity.ts; 1 where unmeasured): the times above are at it. */
  capacity: number[];
}

/** What a rank trains on: shard `index` of `count`, or nothing (a parameter server). */
export interface ShardOf {
  index: number;
  count: number;
  compute: boolean;
}

export class Balancer implements MemberShares {
  private current: number[];
  /** Elastic runs: the global batch of the current membership (otherwise the shards' measured samples per step). */
  private globalBatch: number | null = null;
  private meter = new SpeedMeter();
  /** Per rank: [shard index or −1, then the meter's figures] (ROW floats). */
  private readonly mine = new Float32Array(ROW);
  private decided: Float32Array;
  private capacityStarted = false;

  constructor(
    /** null: an elastic run's, until its first group forms (regroup). */
    private group: ProcessGroup | null,
    private readonly policy: BalancePolicy,
    private shard: ShardOf,
    private readonly onRebalance: (e: RebalanceEvent) => void = () => {},
    /** This rank's CPU capacity (capacity.ts); without one, the wall times as measured. */
    private readonly capacity?: CapacityMeter,
  ) {
    this.current = equalShares(shard.count);
    this.decided = new Float32Array(1 + shard.count);
  }

  /** The shares in use (by shard). */
  get shares(): readonly number[] {
    return this.current;
  }

  /** A resumed run: the checkpoint's shares until the next decision, made on measurements taken after `step` (its first step is warm-up again). */
  restore(shares: readonly number[], step: number): void {
    if (shares.length !== this.shard.count) {
      throw new SmolError('RESUME', `the checkpoint's batch shares are for ${shares.length} data shards, this run has ${this.shard.count}`);
    }
    this.current = [...shares];
    this.meter = new SpeedMeter(step);
    this.capacityStarted = false;
  }

  observe(step: number, samples: number, scaledMs: number, fixedMs?: number): void {
    // The capacity's first window begins where the speed meter's first step does (after warm-up).
    if (!this.capacityStarted) {
      this.capacity?.start();
      this.capacityStarted = true;
    }
    this.meter.observe(step, samples, ...this.asWork(scaledMs, fixedMs));
  }

  /**
   * The step's wall times as its CPU work: a stall (a quota's throttled part of a period, a
   * neighbour's burst) is not work, nor is time blocked inside the gradient exchange waiting on a
   * slower peer's part of it (the fixed time is at most the CPU the process used beside the scaled work).
   */
  private asWork(scaledMs: number, fixedMs: number | undefined): [number, number | undefined] {
    const s = this.capacity?.step();
    if (!s) return [scaledMs, fixedMs];
    const scaled = scaledMs * s.granted;
    if (fixedMs === undefined) return [scaled, undefined];
    const fixed = fixedMs * s.granted;
    return [scaled, Number.isFinite(s.cpuMs) ? Math.max(0, Math.min(fixed, s.cpuMs - scaled)) : fixed];
  }

  async sharesAt(step: number): Promise<readonly number[]> {
    if (this.group && this.group.size > 1 && this.policy.decidesAt(step)) await this.rebalance(step);
    return this.current;
  }

  /**
   * Elastic runs: the members changed. From now on the shares are over `group` (this process is
   * its rank `index`) and the global batch is `globalBatch`; they are decided at once from what the
   * members measured so far (a newcomer's unknown times count as typical). Every member calls it,
   * with the same `decide` (false when the first group forms: nothing is measured yet).
   */
  async regroup(group: ProcessGroup, index: number, step: number, reason: string, globalBatch: number, decide = true): Promise<void> {
    const before = this.current;
    this.group = group;
    this.shard = { index, count: group.size, compute: true };
    this.globalBatch = globalBatch;
    this.current = equalShares(group.size);
    this.decided = new Float32Array(1 + group.size);
    if (decide && group.size > 1) await this.rebalance(step, { reason: `members changed (${reason})`, before });
  }

  /** `change`: a change of members — decide even with unknown times, from equal shares, and record the previous membership's shares as the old ones. */
  private async rebalance(step: number, change?: { reason: string; before: number[] }): Promise<void> {
    const m = this.meter;
    const cap = this.capacity && this.capacityStarted ? this.capacity.read() : { capacity: 1, factor: 1 };
    const window = [m.windowMean * cap.factor, m.fixedWindowMean * cap.factor, m.samplesPerStep, m.jitterMs * cap.factor];
    m.closeWindow(cap.factor);
    this.mine.set([this.shard.compute ? this.shard.index : -1, window[0], m.trend, window[1], m.fixedTrend, window[2], window[3], cap.capacity]);
    const group = this.group!;
    const all = await group.allGather(this.mine);
    const measured = byShard(all, this.shard.count);
    if (this.globalBatch !== null) measured.globalBatch = this.globalBatch;
    this.decided.fill(0);
    let reason = '';
    // Every shard must have been measured (after a resume the meters start empty): until then the shares stay.
    if (group.rank === DECIDER && (change || !measured.trend.some(Number.isNaN))) {
      const d = this.policy.decide(step, this.current, measured);
      if (d || change) {
        this.decided[0] = 1;
        this.decided.set(d ? d.shares : this.current, 1);
        reason = change ? `${change.reason}: ${d ? d.reason : 'equal shares'}` : d!.reason;
      }
    }
    await group.broadcast(this.decided, DECIDER);
    if (this.decided[0] !== 1) return;
    const old = change?.before ?? this.current;
    this.current = Array.from(this.decided.subarray(1));
    if (group.rank === DECIDER) {
      this.onRebalance({
        step, policy: this.policy.name, reason, old_shares: old, shares: this.current, ms_per_sample: measured.trend,
        fixed_ms: measured.fixedTrend ?? [], jitter_ms: measured.jitterMs ?? [], capacity: measured.capacity ?? [],
      });
    }
  }
}

const ROW = 8;

/** The gathered rows as per-shard arrays (NaN where a shard reported nothing); the global batch is the shards' samples per step. */
function byShard(all: Float32Array, shards: number): Measured {
  const nan = (): number[] => Array<number>(shards).fill(NaN);
  const m = { windowMean: nan(), trend: nan(), fixedWindowMean: nan(), fixedTrend: nan(), jitterMs: nan(), capacity: nan(), globalBatch: 0 };
  for (let i = 0; i + ROW - 1 < all.length; i += ROW) {
    const s = all[i];
    if (s < 0 || s >= shards) continue;
    m.windowMean[s] = all[i + 1];
    m.trend[s] = all[i + 2];
    m.fixedWindowMean[s] = all[i + 3];
    m.fixedTrend[s] = all[i + 4];
    m.globalBatch += all[i + 5];
    m.jitterMs[s] = all[i + 6];
    m.capacity[s] = all[i + 7];
  }
  if (!(m.globalBatch > 0)) m.globalBatch = 1;
  return m;
}
