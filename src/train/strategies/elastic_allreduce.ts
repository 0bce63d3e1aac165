/**
 * Elastic all-reduce (`--elastic --min-workers M`): synchronous data parallelism that keeps going
 * when workers die, hang or arrive.
 *
 * Every step is the all-reduce strategy's (a small stats all-reduce, then the gradient buckets),
 * over the group of the current membership epoch (comm/elastic.ts). After each step the state is
 * committed in memory (elastic_state.ts). When a collective fails — a peer died, or one stalled
 * past the deadline — the step is abandoned, the members agree on the next epoch, the state goes
 * back to the newest step every survivor committed (a member that got one step further rolls
 * back), the new group's rank 0 sends that state to everyone (newcomers included), and the data
 * cursor continues from the committed position, split among the new members. When the group's
 * rank 0 sees a worker waiting to join, the flag rides on the stats all-reduce and every member
 * re-forms at the end of that step, with nothing rolled back.
 *
 * The loop asks this strategy for its steps (`steps`): the data follows the membership, and step
 * numbers go back after a rollback. The LR schedule follows the samples consumed, so a smaller group
 * (more, smaller steps) walks the same LR curve as the full one.
 *
 * With load balancing (`balance`, src/balance/) each step's global batch is cut by the members'
 * shares instead of equally; every change of members decides the shares again over the new group
 * (the survivors' measurements; a newcomer counts as typical), and the periodic decisions ride in
 * the step's protected part, so a member lost during one is a change of members like any other.
 *
 * A member may train on a GPU: its gradients are summed on the host (read, awaited, and written
 * back by the loop before the optimizer), its commits are host copies read from the device, and a
 * rollback or a hand-over writes the state back to it (elastic_state.ts).
 */
import { performance } from 'node:perf_hooks';
import { type ElasticGroup, type Membership } from '../../comm/elastic.js';
import { type CursorPosition, ElasticCursor } from '../../data/elastic_cursor.js';
import { BatchLoader } from '../../data/loader.js';
import type { Dataset } from '../../data/dataset.js';
import { scaleInPlace } from '../../tensor/scale.js';
import { isCommFailure, SmolError } from '../../util/errors.js';
import { ElasticState } from '../boundary/elastic_state.js';
import type { AnyBatch } from '../loop/objective.js';
import { LoopDrivenStrategy } from '../loop/loop_driven.js';
import type { CommTiming, GradientExchange, Leadership, PlannedStep, StepInfo, StepPlanning, Strategy, StrategyContext } from './strategy.js';
import type { MemberShares } from '../loop/shares.js';
import { DivergenceError } from './allreduce.js';
import { hostArena } from '../boundary/host_arena.js';
import { StorageCollectives } from '../../parallel/boundary/storage_collectives.js';
import { checksumOf } from '../../nn/arena.js';

/** A change of members, as reported to the run's event log. */
export interface MembershipChange {
  epoch: number;
  members: number[];
  joined: number[];
  left: number[];
  reason: string;
  /** Steps done after the change (the step every member continues from). */
  step: number;
  /** Steps this reporter had committed beyond `step` and gave up. */
  stepsLost: number;
}

export interface ElasticAllReduceOptions {
  /** Gradient bucket size in floats. */
  bucketFloats?: number;
  /** Called on the new group's rank 0 after every change of members. */
  onChange?: (c: MembershipChange) => void;
  /** Load balancing: the members' shares of each global batch (batchSize per member on average). */
  balance?: { shares: MemberShares; batchSize: number };
}

export class ElasticAllReduceStrategy extends LoopDrivenStrategy implements Strategy, GradientExchange, StepPlanning, Leadership {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly planning: StepPlanning = this;
  readonly leadership: Leadership = this;
  readonly name = 'elastic-allreduce';
  readonly rank: number;
  readonly worldSize: number;
  private state: ElasticState | null = null;
  private cursor: ElasticCursor | null = null;
  /** Where the data stands when the cursor is made (after the first formation). */
  private position: CursorPosition = { epoch: 0, offset: 0 };
  private nextStep = 0;
  private joinWanted = false;
  private readonly stats = new Float32Array(3);
  private readonly bucketFloats: number;
  private taken: { epoch: number; offset: number; global: number; indexSum: number } | null = null;
  /** Totals over the run. */
  readonly totals = { changes: 0, stepsLost: 0 };

  constructor(private readonly elastic: ElasticGroup, id: number, maxWorkers: number, private readonly opts: ElasticAllReduceOptions = {}) {
    super();
    this.rank = id;
    this.worldSize = maxWorkers;
    this.bucketFloats = opts.bucketFloats ?? (25 << 20) / 4;
  }

  private get m(): Membership {
    return this.elastic.membership;
  }

  /** Whoever is rank 0 of the group at the end writes the run's result. */
  isLeader(): boolean {
    return this.m.group.rank === 0;
  }

  async setup(ctx: StrategyContext): Promise<void> {
    this.state = new ElasticState(ctx.model, ctx.optimizer);
    const m = await this.elastic.start();
    await this.adopt(ctx, m, m.committed < 0 ? 'formed' : 'joined');
  }

  /** The steps of the run: the next global batch split among the current members, until the data is used up. */
  async *steps(ctx: StrategyContext, data: Dataset, batchSize: number, epochs: number, seed: number): AsyncGenerator<PlannedStep> {
    this.cursor = new ElasticCursor(data.size, seed, this.position);
    const total = epochs * data.size;
    const fullGlobal = this.worldSize * batchSize;
    // Balanced shares may give one member more than batchSize samples (never more than a global batch).
    const loader = new BatchLoader(data, new Int32Array(0), this.opts.balance ? fullGlobal : batchSize);
    const lastStep = ctx.totalSteps ?? Infinity;
    for (;;) {
      const consumed = this.cursor.consumed;
      const lrStep = Math.floor(consumed / fullGlobal);
      if (consumed >= total || lrStep >= lastStep) return;
      const t = this.cursor.take(this.m.group.rank, this.m.members.length, batchSize, this.opts.balance?.shares.shares);
      let indexSum = 0;
      for (const i of t.indices) indexSum += i;
      this.taken = { epoch: t.epoch, offset: t.offset, global: t.global, indexSum };
      const batch: AnyBatch | null = t.indices.length > 0 ? loader.batchOf(t.indices) : null;
      yield [t.epoch, batch, this.nextStep, lrStep];
    }
  }

  async reduceGradients(ctx: StrategyContext, localLoss: number, samples: number): Promise<CommTiming & { loss: number; info?: StepInfo; regrouped?: boolean }> {
    const t0 = performance.now();
    const g = this.m.group;
    try {
      this.stats[0] = samples > 0 ? localLoss * samples : 0;
      this.stats[1] = samples;
      this.stats[2] = g.rank === 0 ? this.elastic.pendingJoins() : 0;
      await g.allReduce(this.stats, { op: 'sum' });
      const t1 = performance.now();
      const total = this.stats[1];
      this.joinWanted = this.stats[2] > 0;
      // A GPU member's gradients come to the host here; the loop writes the reduced ones back.
      const host = hostArena(ctx.model.arena());
      const grad = await host.grads();
      if (total > 0 && samples !== total) scaleInPlace(host.gradStorageNow(), samples / total);
      const pending: Promise<Float32Array>[] = [];
      for (let start = 0; start < grad.length; start += this.bucketFloats) {
        pending.push(g.allReduce(grad.subarray(start, Math.min(start + this.bucketFloats, grad.length)), { op: 'sum' }));
      }
      await Promise.all(pending);
      // A decision for the next step's batch, inside the protected part (a lost member regroups).
      if (this.opts.balance) await this.opts.balance.shares.sharesAt(this.nextStep + 1);
      const t2 = performance.now();
      const taken = this.taken!;
      return {
        loss: this.stats[0] / total, waitMs: t1 - t0, commMs: t2 - t1,
        info: {
          member_epoch: this.m.epoch, members: this.m.members.length, member_rank: g.rank, data_epoch: taken.epoch, data_offset: taken.offset,
          data_global: taken.global, index_sum: taken.indexSum,
        },
      };
    } catch (err) {
      if (!isCommFailure(err)) throw err;
      await this.regroup(ctx, (err as Error).message);
      return { loss: NaN, waitMs: 0, commMs: performance.now() - t0, regrouped: true };
    }
  }

  async afterStep(ctx: StrategyContext, step: number): Promise<void> {
    this.nextStep = step + 1;
    await this.state!.commit(this.nextStep, this.cursor?.position ?? this.position);
    if (this.joinWanted) {
      this.joinWanted = false;
      await this.regroup(ctx, 'a worker asked to join');
    }
  }

  /** Leaves the current epoch, forms the next, and continues from the newest step every survivor committed. */
  private async regroup(ctx: StrategyContext, reason: string): Promise<void> {
    for (;;) {
      const m = await this.elastic.reform(this.state!.committedStep);
      try {
        await this.adopt(ctx, m, reason);
        return;
      } catch (err) {
        if (!isCommFailure(err)) throw err;
        reason = `while re-forming: ${(err as Error).message}`;
      }
    }
  }

  /**
   * Every member takes the state of the group's rank 0 (rolled back to the step every survivor
   * committed): parameters, buffers, optimizer state and steps, data cursor. Then all verify it.
   */
  private async adopt(ctx: StrategyContext, m: Membership, reason: string): Promise<void> {
    const state = this.state!;
    const head = new Float64Array(4);
    let lost = 0;
    if (m.group.rank === m.source) {
      const mine = state.committedStep;
      const target = m.committed >= 0 ? m.committed : mine;
      const cursor = target >= 0 ? state.restore(target) : null;
      if (target >= 0 && !cursor) throw new SmolError('ELASTIC', `the state source of epoch ${m.epoch} has no commit of step ${target} (newest: ${mine})`);
      lost = Math.max(0, mine - target);
      head.set([Math.max(0, target), cursor?.epoch ?? 0, cursor?.offset ?? 0, ctx.optimizer.steps]);
    }
    await m.group.broadcast(head, m.source);
    await state.broadcastFrom(new StorageCollectives(m.group), m.source);
    const [step, epoch, offset, optimizerSteps] = head;
    ctx.optimizer.restoreSteps(optimizerSteps);
    this.position = { epoch, offset };
    if (this.cursor) this.cursor.position = { epoch, offset };
    this.nextStep = step;
    await state.commit(step, { epoch, offset });
    await this.verify(ctx, m);
    const balance = this.opts.balance;
    if (balance) await balance.shares.regroup(m.group, m.group.rank, step, `${m.members.length} members: ${reason}`, m.members.length * balance.batchSize, reason !== 'formed');
    this.totals.changes++;
    this.totals.stepsLost += lost;
    if (m.group.rank === m.source) this.opts.onChange?.({ epoch: m.epoch, members: m.members, joined: m.joined, left: m.left, reason, step, stepsLost: lost });
  }

  /** Every member holds the same parameters after a change (checksums all-gathered). */
  private async verify(ctx: StrategyContext, m: Membership): Promise<void> {
    const params = ctx.model.arena().params;
    // Read from the device itself (not a host copy taken earlier in the step): what was installed.
    const values = await params.read();
    const mine = new Float32Array(new Uint32Array([parseInt(checksumOf(values), 16)]).buffer);
    const all = new Uint32Array((await m.group.allGather(mine)).buffer);
    const bad = [...all.keys()].filter((r) => all[r] !== all[0]).map((r) => m.members[r]);
    if (bad.length > 0) throw new DivergenceError(bad, this.nextStep, 'after a change of members');
  }

  gather(local: Float32Array): Promise<Float32Array> {
    // Per-worker totals of the members at the end (the result's per-rank rows are by group rank).
    return this.m.group.allGather(local);
  }

  async close(): Promise<void> {
    await this.elastic.finish();
  }
}
