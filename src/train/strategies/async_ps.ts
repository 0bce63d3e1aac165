/**
 * Asynchronous parameter server (`--strategy async-ps`), SmolCluster's EDP.
 *
 * Workers train on their own copy of the model with their own optimizer and, every `pushEvery`
 * (K) local steps, push their update — the change of their parameters since the last push —
 * to the server (rank 0), which applies each push as it arrives, scaled by 1/(1 + staleness):
 * staleness is the number of other workers' updates applied since this worker last pulled. The
 * server answers each push with the new version number, and with the current weights when the
 * worker has fallen more than `stalenessBound` (S) versions behind; the worker then pulls (adopts
 * them) before continuing. No worker ever waits for another.
 *
 * Memory is bounded however slow the server is: a worker waits for the answer to its push before
 * training on, so at most one push per worker is in flight and the server's queue holds at most one
 * per worker. With `quantize`, pushes travel as int8 with one float32 scale per 256 values (the
 * all-reduce's codec, comm/codecs/int8.ts), and each worker keeps the quantisation error and adds it to its next push (error feedback), so no
 * part of an update is lost for good.
 *
 * The server takes one loop step per push: (N-1) × ceil(T / K) steps for T steps per worker.
 *
 * With `recovery` (ps_rejoin.ts, comm/hub.ts underneath), peers may come back. A worker that
 * reconnects — a restarted process, or one the server gave up on past its deadline — is welcomed
 * with the current weights and version; a restarted one also learns where it stands (the steps it
 * had taken at its last applied push) and goes on from there, so only the steps after that push are
 * taken again. A worker whose server went away, or did not answer past the deadline, re-dials it
 * with capped backoff and adopts the weights of its welcome: its update since the last push is
 * dropped. A server restarted from its checkpoint (model and version) welcomes every worker the
 * same way; the pushes applied after that checkpoint are lost. The server then runs until every
 * worker has sent its last push, or none is left to wait for past the deadline.
 *
 * With `balanced` (async_ps_leases.ts) workers claim batches by push cadence: each push is answered
 * with the worker's next lease of K batches, so a faster worker trains more of the run's batches.
 */
import { hostArena } from '../boundary/host_arena.js';
import { performance } from 'node:perf_hooks';
import type { ProcessGroup } from '../../comm/process_group.js';
import { int8 } from '../../comm/codecs/int8.js';
import type { Dataset } from '../../data/dataset.js';
import { BatchLoader } from '../../data/loader.js';
import { SmolError, TimeoutError } from '../../util/errors.js';
import { LoopDrivenStrategy } from '../loop/loop_driven.js';
import type { Checkpointing, CommTiming, DataShard, GradientExchange, PlannedStep, StepInfo, StepPlanning, Strategy, StrategyContext, UpdateApplier, UpdateResult } from './strategy.js';
import { HEAD_SLOTS, type PsRecovery, SERVER_RANK, TAG, broadcastModel, gatherAtServer, psShard } from './ps_common.js';
import { BatchPool, type Lease, LeaseDesk, firstLease } from './async_ps_leases.js';
import { Generations, Waker, awaitWorkers, dropLink, receiveWelcome, rejoinServer, sendWelcome, serverLost } from './ps_rejoin.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { buffersToOverwrite } from '../boundary/model_buffers.js';

export interface AsyncPsOptions {
  /** Push every K local steps (SmolCluster's worker_update_interval; default 1). */
  pushEvery?: number;
  /** A worker more than S versions behind pulls before continuing (default 4). */
  stalenessBound?: number;
  /** int8 pushes with error feedback (SmolCluster's use_quantization). */
  quantize?: boolean;
  /** Deadline of every wait on a peer (ms). */
  peerTimeoutMs?: number;
  /** Re-admission of workers and reconnection to a restarted server (absent: a lost peer stays lost). */
  recovery?: PsRecovery;
  /** Workers claim batches by push cadence (async_ps_leases.ts) instead of owning fixed shards. */
  balanced?: boolean;
}

const FLAG_LAST = 1;
const FLAG_INT8 = 2;
const FLAG_PULL = 4;
/** Welcome flag: the server has applied every worker's last push. */
const FLAG_DONE = 8;
type Resolved = Required<Omit<AsyncPsOptions, 'recovery'>> & { recovery?: PsRecovery };

function resolved(o: AsyncPsOptions): Resolved {
  return { pushEvery: o.pushEvery ?? 1, stalenessBound: o.stalenessBound ?? 4, quantize: o.quantize ?? false, peerTimeoutMs: o.peerTimeoutMs ?? 60_000, recovery: o.recovery, balanced: o.balanced ?? false };
}

export function createAsyncPsStrategy(group: ProcessGroup, opts: AsyncPsOptions = {}): Strategy {
  return group.rank === SERVER_RANK ? new AsyncPsServer(group, opts) : new AsyncPsWorker(group, opts);
}

/**
 * Encodes a worker's update for the wire with the all-reduce's int8 codec (comm/codecs/int8.ts: one
 * scale per 256 values, rounding ties to even, a non-finite value poisoning its block), with error
 * feedback: `residual` (what earlier pushes' rounding lost) is added to `delta` first (in place),
 * and holds what this push's rounding loses afterwards.
 */
export function encodePush(delta: Float32Array, residual: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < delta.length; i++) delta[i] += residual[i];
  int8.encode(delta, out, residual);
}

/** out[i] = weight × the pushed value i (an int8 push's bytes, decoded by the same codec). */
export function decodePush(bytes: Uint8Array, weight: number, out: Float32Array): void {
  int8.decode(bytes, out);
  for (let i = 0; i < out.length; i++) out[i] *= weight;
}

interface Push {
  worker: number;
  /** The worker's connection generation it came on (a re-admission starts a new one). */
  gen: number;
  /** Steps the worker had taken when it pushed. */
  trained: number;
  samples: number;
  lossSum: number;
  flags: number;
  body: Uint8Array;
  applied: () => void;
}

interface WorkerState {
  /** Server version the worker last pulled. */
  pulled: number;
  /** Its own pushes applied since then. */
  ownSincePull: number;
  done: boolean;
  lost: boolean;
  /** Steps the worker had taken at its last applied push (where a restarted worker goes on from); -1: unknown. */
  trained: number;
}

export class AsyncPsServer extends LoopDrivenStrategy implements Strategy, GradientExchange, UpdateApplier, Checkpointing, StepPlanning {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly update: UpdateApplier = this;
  readonly checkpointing: Checkpointing = this;
  readonly planning: StepPlanning = this;
  readonly name = 'async-ps';
  readonly hostOnly = 'the async-ps server applies the workers\' updates in host memory';
  readonly rank = SERVER_RANK;
  readonly worldSize: number;
  readonly dataShard: DataShard;
  private readonly o: Resolved;
  private ctx: StrategyContext | null = null;
  private version = 0;
  private readonly queue: Push[] = [];
  private readonly state = new Map<number, WorkerState>();
  private readonly generation = new Generations();
  private current: Push | null = null;
  private readonly waker = new Waker();
  private failure: Error | null = null;
  private finished = false;
  /** Pushes applied, by staleness (for tests and summaries). */
  readonly stalenessCounts = new Map<number, number>();
  /** Longest the queue ever got (≤ workers). */
  maxQueue = 0;
  /** Totals over the run, for tests. */
  readonly totals = { lost: 0, rejoined: 0 };
  /** With recovery, the server runs until every worker is done (a worker taken again adds pushes); balanced, likewise. */
  readonly steps?: (ctx: StrategyContext, data: Dataset, batchSize: number, epochs: number, seed: number) => AsyncIterable<PlannedStep>;
  /** Balanced: the batches still to hand out, and who took how many. @internal */
  desk: LeaseDesk | null = null;
  private shardSteps = 0;

  constructor(private readonly group: ProcessGroup, opts: AsyncPsOptions = {}) {
    super();
    this.worldSize = group.size;
    this.o = resolved(opts);
    this.dataShard = psShard(SERVER_RANK, group.size, false);
    if (this.o.recovery && this.o.balanced) throw new SmolError('BAD_FLAGS', 'async-ps: balanced pushes (--enable-load-balancing) cannot be combined with worker recovery');
    if (this.o.recovery) this.steps = (ctx, _data, _batch, epochs) => untilStopped(ctx, epochs);
    if (this.o.balanced) {
      this.steps = (ctx, data, batchSize, epochs, seed) => {
        const pool = new BatchPool({ dataSize: data.size, batchSize, seed, epochs, workers: this.worldSize - 1, stepsPerWorker: this.shardSteps });
        this.desk = new LeaseDesk(pool.size, this.o.pushEvery, this.worldSize - 1);
        // A worker whose first lease is empty (a pool smaller than one lease each) never pushes.
        for (const w of this.workers) if (firstLease(w, this.o.pushEvery, pool.size).count === 0) this.state.get(w)!.done = true;
        return untilStopped(ctx, epochs);
      };
    }
  }

  stepsFor(shardSteps: number): number {
    this.shardSteps = shardSteps;
    return (this.worldSize - 1) * Math.ceil(shardSteps / this.o.pushEvery);
  }

  private get workers(): number[] {
    return Array.from({ length: this.worldSize - 1 }, (_, i) => i + 1);
  }

  async setup(ctx: StrategyContext): Promise<void> {
    this.ctx = ctx;
    this.version = ctx.startStep ?? 0;
    const recovery = this.o.recovery;
    const restarted = recovery?.restarted === true;
    // Where each worker stood at the checkpoint this run resumed from (unknown: -1), else at step 0.
    const saved = savedPositions(ctx.resumedState, this.workers.length);
    for (const w of this.workers) {
      this.state.set(w, { pulled: this.version, ownSincePull: 0, done: false, lost: restarted, trained: saved?.[w - 1] ?? (this.version > 0 ? -1 : 0) });
    }
    if (restarted) {
      // Restarted from a checkpoint: the workers come back one by one, each welcomed with the weights.
      recovery.onRejoin?.((w) => this.readmit(w));
      const lost = (): number[] => this.workers.filter((w) => this.state.get(w)!.lost);
      await awaitWorkers('async-ps server', lost, this.workers.length, this.o.peerTimeoutMs, (ms) => this.waker.nap(ms));
      return;
    }
    await broadcastModel(this.group, ctx);
    // Each worker learns where it starts: step 0, or where it stood at the checkpoint resumed from.
    await Promise.all(this.workers.map((w) => sendWelcome(this.group, w, this.welcomeHead(w), [])));
    for (const w of this.workers) void this.receiveLoop(w, 0);
    recovery?.onRejoin?.((w) => this.readmit(w));
  }

  /** What a (re)joining worker is told: the version, whether the run is over, and where it stood. */
  private welcomeHead(w: number): Float64Array {
    return Float64Array.of(this.version, this.finished ? FLAG_DONE : 0, this.state.get(w)!.trained, 0, 0, 0, 0, 0);
  }

  /** Where each worker stood at its last applied push: a restarted or resumed server tells them. */
  checkpointState(): Record<string, unknown> {
    return { async_ps_trained: this.workers.map((w) => this.state.get(w)!.trained) };
  }

  /** A worker (re)connected: it starts over from the current weights; its old connection's pushes are dropped. */
  private readmit(w: number): void {
    const gen = this.generation.next(w);
    const st = this.state.get(w)!;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].worker !== w) continue;
      const [dropped] = this.queue.splice(i, 1);
      dropped.applied();
    }
    Object.assign(st, { pulled: this.version, ownSincePull: 0, lost: false, done: this.finished });
    this.totals.rejoined++;
    process.stderr.write(`smolcluster: async-ps server: worker rank ${w} (re)joined at version ${this.version}\n`);
    this.o.recovery?.rejoined?.(w, this.version);
    const { model } = this.ctx!;
    sendWelcome(this.group, w, this.welcomeHead(w), [hostArena(model.arena()).paramsNow(), ...model.namedBuffers().map(([, b]) => b)])
      .catch((err: Error) => this.generation.of(w) === gen && this.lose(w, err));
    if (!this.finished) void this.receiveLoop(w, gen);
    this.poke();
  }

  /** Worker w's pushes over its connection `gen`, one at a time (the next is read once this one is applied). */
  private async receiveLoop(w: number, gen: number): Promise<void> {
    const n = this.ctx!.model.arena().size;
    const head = new Float64Array(HEAD_SLOTS);
    const body = new Uint8Array(this.o.quantize ? int8.encodedBytes(n) : n * 4);
    const st = this.state.get(w)!;
    const current = (): boolean => this.generation.of(w) === gen;
    while (current() && !st.done && !st.lost) {
      try {
        await this.group.recv(head, w, { tag: TAG.pushHead, timeoutMs: this.o.peerTimeoutMs });
        await this.group.recv(body, w, { tag: TAG.pushBody, timeoutMs: this.o.peerTimeoutMs });
      } catch (err) {
        if (current()) this.lose(w, err as Error);
        return;
      }
      if (!current()) return;
      const [samples, lossSum, flags, , trained] = head;
      if (flags & FLAG_LAST) st.done = true;
      // The body buffer is reused only after this push is applied (the worker waits for its answer anyway).
      await new Promise<void>((applied) => {
        this.queue.push({ worker: w, gen, trained, samples, lossSum, flags, body, applied });
        this.maxQueue = Math.max(this.maxQueue, this.queue.length);
        this.poke();
      });
    }
  }

  private lose(w: number, err: Error): void {
    const st = this.state.get(w)!;
    if (st.lost || st.done) return;
    st.lost = true;
    this.totals.lost++;
    // A stalled worker finds its connection closed when it wakes, and reconnects through the door.
    if (this.o.recovery) dropLink(this.group, w, err);
    process.stderr.write(`smolcluster: async-ps server: worker rank ${w} dropped out (${err.message})${this.o.recovery ? '; it may rejoin' : ''}\n`);
    this.poke();
  }

  private poke(): void {
    this.waker.poke();
  }

  private get active(): number[] {
    return [...this.state].filter(([, s]) => !s.done && !s.lost).map(([w]) => w);
  }

  /** The workers the server still waits for: with recovery, a lost one may come back. */
  private get awaited(): number[] {
    return [...this.state].filter(([, s]) => !s.done && (this.o.recovery !== undefined || !s.lost)).map(([w]) => w);
  }

  /** Takes the next push (waiting for one) and stages its weighted update in the gradient arena. */
  async reduceGradients(ctx: StrategyContext): Promise<CommTiming & { loss: number; info: StepInfo }> {
    const t0 = performance.now();
    /** Since when no worker is running (only lost ones left to wait for, with recovery). */
    let idleSince = -1;
    while (this.queue.length === 0) {
      if (this.failure) throw this.failure;
      const now = performance.now();
      const waited = now - t0;
      idleSince = this.active.length > 0 ? -1 : idleSince < 0 ? now : idleSince;
      const lostOnly = idleSince >= 0 && now - idleSince > this.o.peerTimeoutMs;
      if (this.awaited.length === 0 || lostOnly) {
        if (lostOnly) process.stderr.write(`smolcluster: async-ps server: worker rank ${this.awaited.join(', ')} not back after ${Math.round(now - idleSince)} ms; ending the run without them\n`);
        this.current = null;
        hostArena(ctx.model.arena()).gradsNow().fill(0);
        return { loss: NaN, waitMs: performance.now() - t0, commMs: 0, info: { push_from: -1 } };
      }
      // With recovery each worker's own receive deadline drops it (it may come back), then the wait above.
      if (!this.o.recovery && waited > this.o.peerTimeoutMs) throw new TimeoutError('async-ps push', this.active, waited, 'no push arrived');
      await this.waker.nap(Math.max(1, this.o.peerTimeoutMs - (idleSince >= 0 ? now - idleSince : waited) + 1));
    }
    const t1 = performance.now();
    const push = this.queue.shift()!;
    this.current = push;
    const st = this.state.get(push.worker)!;
    const staleness = Math.max(0, this.version - st.pulled - st.ownSincePull);
    const weight = 1 / (1 + staleness);
    const grad = hostArena(ctx.model.arena()).gradsNow();
    if (push.flags & FLAG_INT8) {
      decodePush(push.body, weight, grad);
    } else {
      const delta = new Float32Array(push.body.buffer, push.body.byteOffset, grad.length);
      for (let i = 0; i < grad.length; i++) grad[i] = delta[i] * weight;
    }
    this.stalenessCounts.set(staleness, (this.stalenessCounts.get(staleness) ?? 0) + 1);
    const info: StepInfo = { push_from: push.worker, staleness, weight, version: this.version, queued: this.queue.length, trained_samples: push.samples };
    return { loss: push.samples > 0 ? push.lossSum / push.samples : NaN, waitMs: t1 - t0, commMs: 0, info };
  }

  /** Applies the staged update, answers the pusher (with the weights when it must pull). */
  async applyUpdate(ctx: StrategyContext): Promise<UpdateResult> {
    const push = this.current;
    if (!push) return this.end({ commMs: 0, waitMs: 0, stop: true });
    const { params, grads } = ctx.model.arena();
    kernelsFor(params).axpy(1, grads.buffer, params.buffer);
    this.version++;
    const st = this.state.get(push.worker)!;
    const t0 = performance.now();
    let pull = false;
    // A push of a connection given up since (the worker was re-admitted) is applied, but not answered.
    if (push.gen === this.generation.of(push.worker)) {
      st.trained = push.trained;
      st.ownSincePull++;
      const behind = this.version - st.pulled - st.ownSincePull;
      // Balanced: the answer carries the worker's next lease; an empty one ends its part.
      const lease = this.desk?.grant(push.worker);
      if (lease && lease.count === 0) st.done = true;
      pull = behind > this.o.stalenessBound || (push.flags & FLAG_LAST) !== 0 || lease?.count === 0;
      if (pull) {
        st.pulled = this.version;
        st.ownSincePull = 0;
      }
      try {
        await this.group.send(Float64Array.of(this.version, pull ? FLAG_PULL : 0, lease?.start ?? 0, lease?.count ?? 0, 0, 0, 0, 0), push.worker, { tag: TAG.replyHead });
        if (pull) await this.group.send(hostArena(ctx.model.arena()).paramsNow(), push.worker, { tag: TAG.replyBody });
      } catch (err) {
        if (push.gen === this.generation.of(push.worker)) this.lose(push.worker, err as Error);
      }
    }
    this.current = null;
    push.applied();
    const stop = this.awaited.length === 0 && this.queue.length === 0;
    return this.end({ commMs: performance.now() - t0, waitMs: 0, stop, info: { pulled: pull } });
  }

  /** After the last update: a worker that comes back later learns that the run is over. */
  private async end(r: UpdateResult): Promise<UpdateResult> {
    if (r.stop && !this.finished) {
      this.finished = true;
      await this.o.recovery?.over?.();
    }
    return r;
  }

  afterStep(): Promise<void> {
    return Promise.resolve();
  }

  gather(local: Float32Array): Promise<Float32Array> {
    const reachable = this.workers.filter((w) => !this.state.get(w)!.lost);
    return gatherAtServer(this.group, local, reachable, this.o.peerTimeoutMs);
  }

  async close(): Promise<void> {
    for (const st of this.state.values()) st.done = true;
    this.failure ??= new SmolError('CLOSED', 'async-ps server closed');
  }
}

/** The per-worker positions a checkpoint kept (AsyncPsServer.checkpointState), if whole. */
function savedPositions(state: Record<string, unknown> | undefined, workers: number): number[] | null {
  const saved = state?.async_ps_trained;
  if (!Array.isArray(saved) || saved.length !== workers || !saved.every((t) => Number.isInteger(t) && t >= -1)) return null;
  return saved as number[];
}

/** A server's steps with recovery: one per push, numbered on from the checkpoint's, until it stops. */
async function* untilStopped(ctx: StrategyContext, epochs: number): AsyncGenerator<PlannedStep> {
  const total = ctx.totalSteps ?? Infinity;
  for (let step = ctx.startStep ?? 0; ; step++) yield [Math.min(epochs - 1, Math.floor((step * epochs) / total)), null, step];
}

export class AsyncPsWorker extends LoopDrivenStrategy implements Strategy, GradientExchange, StepPlanning {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly planning: StepPlanning = this;
  readonly name = 'async-ps';
  readonly rank: number;
  readonly worldSize: number;
  readonly dataShard: DataShard;
  private readonly o: Resolved;
  private base = new Float32Array(0);
  private delta = new Float32Array(0);
  private residual = new Float32Array(0);
  private encoded = new Uint8Array(0);
  private readonly head = new Float64Array(HEAD_SLOTS);
  private readonly replyHead = new Float64Array(HEAD_SLOTS);
  private sinceSamples = 0;
  private sinceLoss = 0;
  private sincePush = 0;
  private totalSteps = Infinity;
  version = 0;
  pulls = 0;
  /** Times this worker re-dialed a server it had lost. */
  reconnects = 0;
  /** Balanced: the batches this worker trains on until its next push (null: a fixed shard). */
  private lease: Lease | null = null;
  /** Balanced: this worker's steps come from its leases. */
  readonly steps?: (ctx: StrategyContext, data: Dataset, batchSize: number, epochs: number, seed: number) => AsyncIterable<PlannedStep>;

  constructor(private readonly group: ProcessGroup, opts: AsyncPsOptions = {}) {
    super();
    this.rank = group.rank;
    this.worldSize = group.size;
    this.o = resolved(opts);
    this.dataShard = psShard(group.rank, group.size, false);
    if (this.o.balanced) this.steps = (ctx, data, batchSize, epochs, seed) => this.leasedSteps(ctx, data, batchSize, epochs, seed);
  }

  /** Balanced: the batches of each lease in turn, until the server answers a push with an empty one. */
  private async *leasedSteps(ctx: StrategyContext, data: Dataset, batchSize: number, epochs: number, seed: number): AsyncGenerator<PlannedStep> {
    const workers = this.worldSize - 1;
    const pool = new BatchPool({ dataSize: data.size, batchSize, seed, epochs, workers, stepsPerWorker: ctx.totalSteps ?? 0 });
    const loader = new BatchLoader(data, new Int32Array(0), batchSize);
    this.lease = firstLease(this.rank, this.o.pushEvery, pool.size);
    let step = 0;
    while (this.lease.count > 0) {
      const { start, count } = this.lease;
      for (let g = start; g < start + count; g++) {
        const { epoch, indices } = pool.batch(g);
        // The learning rate follows the run's progress (batches of all workers), as on fixed shards.
        yield [epoch, loader.batchOf(indices, epoch), step++, Math.floor(g / workers)];
      }
    }
  }

  async setup(ctx: StrategyContext): Promise<void> {
    const n = ctx.model.arena().size;
    this.base = new Float32Array(n);
    this.delta = new Float32Array(n);
    if (this.o.quantize) {
      this.residual = new Float32Array(n);
      this.encoded = new Uint8Array(int8.encodedBytes(n));
    }
    this.totalSteps = ctx.totalSteps ?? Infinity;
    if (this.o.recovery?.restarted) await this.welcome(ctx, true);
    else {
      await broadcastModel(this.group, ctx);
      const [, , trained] = await receiveWelcome(this.group, new Float64Array(HEAD_SLOTS), [], this.o.peerTimeoutMs);
      ctx.startStep = Math.max(0, trained);
      if (trained > 0) process.stderr.write(`smolcluster: async-ps worker ${this.rank}: the resumed run goes on from step ${trained}\n`);
    }
    this.base.set(await hostArena(ctx.model.arena()).params(false));
  }

  /**
   * The server's welcome (after a (re)connect): its weights and version. A restarted process also
   * goes on from the steps it had taken at its last push the server applied (the loop starts there).
   */
  private async welcome(ctx: StrategyContext, restarted: boolean): Promise<void> {
    const { model } = ctx;
    const data = hostArena(model.arena()).paramsToOverwrite();
    const buffers = buffersToOverwrite(model);
    const [version, flags, trained] = await receiveWelcome(this.group, new Float64Array(HEAD_SLOTS), [data, ...buffers], this.o.peerTimeoutMs);
    model.writeBuffers(buffers);
    this.version = version;
    this.base.set(data);
    this.sincePush = 0;
    this.sinceSamples = 0;
    this.sinceLoss = 0;
    if (!restarted) return;
    ctx.startStep = flags & FLAG_DONE ? this.totalSteps : Math.max(0, trained);
    process.stderr.write(`smolcluster: async-ps worker ${this.rank}: joined the running run at version ${version}; going on from step ${ctx.startStep}${trained < 0 ? ' (the server did not know where this worker stood)' : ''}\n`);
  }

  /** Local training: nothing to combine; the loop's optimizer steps on this worker's own gradient. */
  async reduceGradients(_ctx: StrategyContext, localLoss: number, samples: number): Promise<CommTiming & { loss: number }> {
    this.sinceSamples += samples;
    this.sinceLoss += localLoss * samples;
    return { loss: localLoss, commMs: 0, waitMs: 0 };
  }

  /** Every K steps (and after the last): push the update, then adopt the weights if told to pull. */
  async afterStep(ctx: StrategyContext, step: number): Promise<void> {
    this.sincePush++;
    // Balanced: a lease ends with a push, whose answer says what comes next (the server knows when it is the last).
    const last = !this.lease && step + 1 >= this.totalSteps;
    if (this.sincePush < (this.lease ? this.lease.count : this.o.pushEvery) && !last) return;
    this.sincePush = 0;
    for (;;) {
      try {
        await this.push(ctx, step, last);
        return;
      } catch (err) {
        if (!serverLost(err, this.o.recovery)) throw err;
        await rejoinServer('async-ps worker', this.group, this.o.recovery!, err, () => this.welcome(ctx, false));
        this.reconnects++;
        process.stderr.write(`smolcluster: async-ps worker ${this.rank}: reconnected; going on from version ${this.version} at step ${step + 1}\n`);
        // Its update since the last push is dropped (it trains on from the welcome's weights); the
        // last push ends this worker's part, so it goes again, with nothing to add.
        if (!last) return;
      }
    }
  }

  /** Sends the update since the last push (with the steps taken so far) and takes the answer. */
  private async push(ctx: StrategyContext, step: number, last: boolean): Promise<void> {
    // A GPU worker's parameters come to the host here; the loop writes them back after afterStep (pulled or not).
    const data = await hostArena(ctx.model.arena()).params();
    for (let i = 0; i < data.length; i++) this.delta[i] = data[i] - this.base[i];
    let flags = last ? FLAG_LAST : 0;
    let body: Uint8Array;
    if (this.o.quantize) {
      encodePush(this.delta, this.residual, this.encoded);
      body = this.encoded;
      flags |= FLAG_INT8;
    } else body = new Uint8Array(this.delta.buffer, this.delta.byteOffset, this.delta.byteLength);
    this.head.set([this.sinceSamples, this.sinceLoss, flags, this.version, step + 1]);
    this.sinceSamples = 0;
    this.sinceLoss = 0;
    await this.group.send(this.head, SERVER_RANK, { tag: TAG.pushHead });
    await this.group.send(body, SERVER_RANK, { tag: TAG.pushBody });
    await this.group.recv(this.replyHead, SERVER_RANK, { tag: TAG.replyHead, timeoutMs: this.o.peerTimeoutMs });
    const [version, replyFlags, leaseStart, leaseCount] = this.replyHead;
    if (this.lease) this.lease = { start: leaseStart, count: leaseCount };
    if (replyFlags & FLAG_PULL) {
      await this.group.recv(data, SERVER_RANK, { tag: TAG.replyBody, timeoutMs: this.o.peerTimeoutMs });
      this.version = version;
      this.pulls++;
    }
    this.base.set(data);
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return gatherAtServer(this.group, local, [], this.o.peerTimeoutMs);
  }

  async close(): Promise<void> {}
}
