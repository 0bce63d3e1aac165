/**
 * Synchronous parameter server (`--strategy ps`), as SmolCluster's server/worker pair.
 *
 * Rank 0 holds the model (and trains a shard itself with `serverTrains`). Every step it collects
 * the workers' gradients, each tagged with the model version it was computed on, until all live
 * workers have sent theirs or the straggler deadline — `stragglerMs` after the step's first
 * gradient — passes. It averages what arrived (weighted by samples), takes the optimizer step and
 * answers every contributor with the new weights (or, with `reply: 'gradients'`, with the averaged
 * gradient, which each worker applies with its own optimizer).
 *
 * Every gradient gets exactly one answer and a worker sends its next gradient only after its
 * answer, so at most one message per worker is ever in flight: memory stays bounded however slow a
 * worker is. A gradient that arrives after the deadline, or for an older version, is counted and
 * dropped; its worker is answered with the current weights (in gradients mode: weights and
 * optimizer state) so it rejoins at the next step. Each step's record names the contributors and
 * the late workers. Every `checksumEvery` versions a worker sends the checksum of the weights it
 * computed on and the server compares it with its own.
 *
 * With `recovery` (comm/hub.ts underneath), peers may come back. A worker that reconnects — a
 * restarted process, or one whose connection dropped — is re-admitted at once: the server sends
 * it the current model state (weights, buffers, optimizer state, version) and waits for its
 * gradients again from the next one it sends. A worker whose server went away re-dials it with
 * capped exponential backoff until its deadline; a server restarted from its checkpoint welcomes
 * every worker the same way, and each worker continues from the server's version (steps()), so
 * the steps between the checkpoint and the crash are taken again.
 *
 * Under `reply: 'gradients'` a worker applies the averaged gradient with the server's arithmetic
 * (ps_host_replica.ts: in place on the cpu, on a host replica whose weights are uploaded for a GPU
 * model), so every worker holds the server's bits.
 */
import { hostArena } from '../boundary/host_arena.js';
import { performance } from 'node:perf_hooks';
import type { ProcessGroup } from '../../comm/process_group.js';
import { BatchLoader } from '../../data/loader.js';
import type { Dataset } from '../../data/dataset.js';
import { DistributedSampler } from '../../data/sampler.js';
import { SmolError, TimeoutError } from '../../util/errors.js';
import type { AnyBatch } from '../loop/objective.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import { LoopDrivenStrategy } from '../loop/loop_driven.js';
import type { CommTiming, DataShard, GradientExchange, PlannedStep, StepInfo, StepPlanning, Strategy, StrategyContext, UpdateApplier, UpdateResult } from './strategy.js';
import { DivergenceError } from './allreduce.js';
import { HEAD_SLOTS, type PsRecovery, SERVER_RANK, TAG, broadcastModel, checksumOf, gatherAtServer, psShard, sleep } from './ps_common.js';
import { Generations, Waker, awaitWorkers, dropLink, receiveWelcome, rejoinServer, sendWelcome, serverLost } from './ps_rejoin.js';
import { buffersToOverwrite } from '../boundary/model_buffers.js';
import { installAll, valuesToReceive } from '../../tensor/boundary/host_values.js';
import { type PsUpdater, psUpdater } from './ps_host_replica.js';

export type PsReply = 'weights' | 'gradients';

export interface ParamServerOptions {
  /** Straggler deadline: how long after the step's first gradient the server waits for the rest (ms). */
  stragglerMs?: number;
  /** What the server answers with (default weights). */
  reply?: PsReply;
  /** The server trains a shard too (default false: it only aggregates). */
  serverTrains?: boolean;
  /** Compare worker and server parameter checksums every K versions (0: never). */
  checksumEvery?: number;
  /** A worker silent this long is given up (server), or a server silent this long fails the worker (ms). */
  peerTimeoutMs?: number;
  /** Debug knob: this worker sleeps this long before sending each gradient (a straggler). */
  slowMs?: number;
  /** Re-admission of workers and reconnection to a restarted server (absent: a lost peer stays lost). */
  recovery?: PsRecovery;
}

/** Reply kinds. */
const KIND_WEIGHTS = 0;
const KIND_GRADIENTS = 1;
const KIND_RESYNC = 2;
/** What a worker set up for weights receives a gradient reply into (none: the receive fails on its size). */
const NO_GRADIENTS = new Float32Array(0);
/** Reply flags. */
const FLAG_DONE = 1;
const FLAG_LATE = 2;

function resolved(o: ParamServerOptions): Required<Omit<ParamServerOptions, 'recovery'>> & { recovery?: PsRecovery } {
  return {
    recovery: o.recovery,
    stragglerMs: o.stragglerMs ?? 60_000,
    reply: o.reply ?? 'weights',
    serverTrains: o.serverTrains ?? false,
    checksumEvery: o.checksumEvery ?? 100,
    peerTimeoutMs: o.peerTimeoutMs ?? 60_000,
    slowMs: o.slowMs ?? 0,
  };
}

/** The server on rank 0, a worker elsewhere. */
export function createParamServerStrategy(group: ProcessGroup, opts: ParamServerOptions = {}): Strategy {
  return group.rank === SERVER_RANK ? new ParamServer(group, opts) : new ParamServerWorker(group, opts);
}

/** Why a worker stopped taking part. */
type Gone = 'done' | 'lost';

export class ParamServer extends LoopDrivenStrategy implements Strategy, GradientExchange, UpdateApplier {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly update: UpdateApplier = this;
  readonly name = 'ps';
  readonly hostOnly = 'the ps server sums the workers\' gradients and updates in host memory';
  readonly rank = SERVER_RANK;
  readonly worldSize: number;
  readonly dataShard: DataShard;
  private readonly o: ReturnType<typeof resolved>;
  private ctx: StrategyContext | null = null;
  /** Model version: updates applied so far; gradients for this version are accepted while `open`. */
  private version = 0;
  private open = true;
  private finished = false;
  private acc = new Float32Array(0);
  private accSamples = 0;
  private accLoss = 0;
  private firstAt = 0;
  private readonly contributed = new Set<number>();
  private readonly lateThisStep = new Set<number>();
  private staleThisStep = 0;
  /** Workers that sent a gradient and wait for their answer. */
  private readonly owed = new Map<number, { late: boolean }>();
  private readonly gone = new Map<number, Gone>();
  private readonly sends = new Set<Promise<void>>();
  private versionChecksum = -1;
  private failure: Error | null = null;
  private readonly waker = new Waker();
  private lastLoss = NaN;
  private lastContributors = 0;
  private gradCopy = new Float32Array(0);
  /** Connection generation of each worker: a re-admission starts a new one, and the old one's failures no longer count. */
  private readonly generation = new Generations();
  /** Totals over the run, for result summaries and tests. */
  readonly totals = { stale: 0, late: 0, lost: 0, rejoined: 0 };

  constructor(private readonly group: ProcessGroup, opts: ParamServerOptions = {}) {
    super();
    this.worldSize = group.size;
    this.o = resolved(opts);
    this.dataShard = psShard(SERVER_RANK, group.size, this.o.serverTrains);
  }

  private get workers(): number[] {
    return Array.from({ length: this.worldSize - 1 }, (_, i) => i + 1);
  }

  private get live(): number[] {
    return this.workers.filter((w) => !this.gone.has(w));
  }

  async setup(ctx: StrategyContext): Promise<void> {
    this.ctx = ctx;
    this.version = ctx.startStep ?? 0;
    const n = ctx.model.arena().size;
    this.acc = new Float32Array(n);
    this.gradCopy = new Float32Array(this.o.reply === 'gradients' ? n : 0);
    if (this.o.checksumEvery > 0) this.versionChecksum = await checksumOf(ctx);
    const recovery = this.o.recovery;
    if (recovery?.restarted) {
      // Restarted from a checkpoint: the workers come back one by one, each welcomed with the state.
      for (const w of this.workers) this.gone.set(w, 'lost');
      recovery.onRejoin?.((w) => this.readmit(w));
      await awaitWorkers('ps server', () => this.workers.filter((w) => this.gone.has(w)), this.workers.length, this.o.peerTimeoutMs, (ms) => this.waker.nap(ms));
      return;
    }
    await broadcastModel(this.group, ctx);
    for (const w of this.workers) void this.receiveLoop(w, n);
    recovery?.onRejoin?.((w) => this.readmit(w));
  }

  /**
   * A worker (re)connected: it starts over at the current version with the whole model state, and
   * its gradients count again from the next one it sends.
   */
  private readmit(w: number): void {
    const gen = this.generation.next(w);
    this.gone.delete(w);
    this.owed.delete(w);
    this.totals.rejoined++;
    process.stderr.write(`smolcluster: ps server: worker rank ${w} (re)joined at version ${this.version}\n`);
    this.o.recovery?.rejoined?.(w, this.version);
    this.welcome(w, gen);
    void this.receiveLoop(w, this.ctx!.model.arena().size);
    this.poke();
  }

  /** The whole state a joining worker needs: version, weights, buffers, optimizer state (and DONE after the last update). */
  private welcome(w: number, gen: number): void {
    const ctx = this.ctx!;
    const head = Float64Array.of(this.version, this.finished ? FLAG_DONE : 0, ctx.optimizer.lr, ctx.optimizer.steps, 0, 0, 0, 0);
    const parts: ArrayBufferView[] = [hostArena(ctx.model.arena()).paramsNow(), ...ctx.model.namedBuffers().map(([, b]) => b), ...ctx.optimizer.stateBuffers()];
    if (this.finished) this.gone.set(w, 'done');
    this.track(sendWelcome(this.group, w, head, parts), w, gen);
  }

  /** Worker w's connection generation (0: the one of the start-up mesh). */
  private connection(w: number): number {
    return this.generation.of(w);
  }

  /** A send to worker w over its connection `gen`: awaited before the model changes; its failure loses w (if still that connection). */
  private track(send: Promise<void>, w: number, gen: number): void {
    const tracked = send.catch((err: Error) => {
      if (this.connection(w) === gen) this.lose(w, err);
    });
    this.sends.add(tracked);
    void tracked.finally(() => {
      this.sends.delete(tracked);
      if (this.finished) this.poke();
    });
  }

  /** One pending receive per worker connection, for the whole run: each gradient is handled as it lands. */
  private async receiveLoop(w: number, n: number): Promise<void> {
    const gen = this.connection(w);
    const current = (): boolean => this.connection(w) === gen && !this.gone.has(w);
    const head = new Float64Array(HEAD_SLOTS);
    const body = new Float32Array(n);
    while (current()) {
      try {
        // The worker's next gradient follows our answer, which may wait out the straggler deadline.
        await this.group.recv(head, w, { tag: TAG.pushHead, timeoutMs: this.o.peerTimeoutMs + this.o.stragglerMs });
        await this.group.recv(body, w, { tag: TAG.pushBody, timeoutMs: this.o.peerTimeoutMs });
      } catch (err) {
        if (current()) this.lose(w, err as Error);
        return;
      }
      if (!current()) return;
      try {
        this.onGradient(w, head, body);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
    }
  }

  private lose(w: number, err: Error): void {
    if (this.gone.has(w)) return;
    this.gone.set(w, 'lost');
    this.owed.delete(w);
    // A stalled worker (past its deadline, not dead) finds its connection closed when it wakes,
    // and reconnects through the door instead of waiting on a server that no longer listens to it.
    if (this.o.recovery) dropLink(this.group, w, err);
    this.totals.lost++;
    process.stderr.write(`smolcluster: ps server: worker rank ${w} dropped out (${err.message}); continuing with ${this.live.length}\n`);
    this.poke();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.poke();
  }

  private poke(): void {
    this.waker.poke();
  }

  private onGradient(w: number, head: Float64Array, body: Float32Array): void {
    const [version, samples, lossSum, checksum] = head;
    if (this.finished) {
      this.reply(w, { late: true });
      return;
    }
    // A re-admitted worker may send again for a version it already contributed to: counted once.
    if (version === this.version && this.open && !this.contributed.has(w)) {
      if (checksum >= 0 && this.versionChecksum >= 0 && checksum !== this.versionChecksum) {
        throw new DivergenceError([w], version, `checksum ${checksum.toString(16)} vs the server's ${this.versionChecksum.toString(16)}`);
      }
      this.accumulate(body, samples, lossSum);
      this.contributed.add(w);
      this.owed.set(w, { late: false });
      // Wakes the collector: everyone is in, or the first gradient started the deadline.
      this.poke();
      return;
    }
    // Too late for this step (the deadline passed) or computed on an older version: dropped.
    if (version === this.version) this.totals.late++;
    else {
      this.totals.stale++;
      this.staleThisStep++;
    }
    this.lateThisStep.add(w);
    if (this.open) this.reply(w, { late: true });
    else this.owed.set(w, { late: true });
  }

  private accumulate(grad: Float32Array, samples: number, lossSum: number): void {
    if (this.accSamples === 0 && this.contributed.size === 0) this.firstAt = performance.now();
    const acc = this.acc;
    for (let i = 0; i < acc.length; i++) acc[i] += grad[i] * samples;
    this.accSamples += samples;
    this.accLoss += lossSum;
  }

  private allIn(): boolean {
    return this.live.every((w) => this.contributed.has(w));
  }

  async reduceGradients(ctx: StrategyContext, localLoss: number, samples: number): Promise<CommTiming & { loss: number; info: StepInfo }> {
    if (samples > 0) {
      this.accumulate(hostArena(ctx.model.arena()).gradsNow(), samples, localLoss * samples);
      this.contributed.add(SERVER_RANK);
    }
    const t0 = performance.now();
    await this.collect();
    const t1 = performance.now();
    this.open = false;
    const grad = hostArena(ctx.model.arena()).gradsNow();
    const scale = this.accSamples > 0 ? 1 / this.accSamples : 0;
    for (let i = 0; i < grad.length; i++) grad[i] = this.acc[i] * scale;
    const loss = this.accSamples > 0 ? this.accLoss * scale : NaN;
    this.lastLoss = loss;
    this.lastContributors = this.contributed.size;
    const late = this.live.filter((w) => !this.contributed.has(w));
    for (const w of this.lateThisStep) if (!late.includes(w) && !this.contributed.has(w)) late.push(w);
    const info: StepInfo = {
      version: this.version,
      contributors: this.contributed.size,
      contributed_ranks: [...this.contributed].sort((a, b) => a - b),
      late_ranks: late.sort((a, b) => a - b),
      stale_dropped: this.staleThisStep,
      // What the workers trained on in this step: the server's throughput is theirs.
      trained_samples: this.accSamples,
    };
    return { loss, waitMs: t1 - t0, commMs: 0, info };
  }

  /** Until every live worker's gradient for this version is in, or the deadline after the first. */
  private async collect(): Promise<void> {
    const start = performance.now();
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.allIn() && this.contributed.size > 0) return;
      const now = performance.now();
      if (this.contributed.size > 0 && now - this.firstAt >= this.o.stragglerMs) return;
      if (this.contributed.size === 0 && now - start >= this.o.peerTimeoutMs) {
        throw new TimeoutError('ps gradient collection', this.live, now - start, 'no worker sent a gradient');
      }
      // With recovery, workers may come back: wait for them until the deadline above.
      if (this.contributed.size === 0 && this.live.length === 0 && !this.o.recovery?.onRejoin) {
        throw new SmolError('PEER', 'ps server: every worker has dropped out');
      }
      const until = this.contributed.size > 0 ? this.firstAt + this.o.stragglerMs : start + this.o.peerTimeoutMs;
      await this.waker.nap(Math.max(0, until - now));
    }
  }

  async applyUpdate(ctx: StrategyContext, step: number): Promise<UpdateResult> {
    if (this.failure) throw this.failure;
    await Promise.all(this.sends);
    const t0 = performance.now();
    const stepped = this.accSamples > 0;
    if (this.o.reply === 'gradients') this.gradCopy.set(hostArena(ctx.model.arena()).gradsNow());
    if (stepped) ctx.optimizer.step();
    this.version++;
    this.finished = ctx.totalSteps !== undefined && step + 1 >= ctx.totalSteps;
    if (this.o.checksumEvery > 0 && this.version % this.o.checksumEvery === 0) this.versionChecksum = await checksumOf(ctx);
    // The next version's window opens before any answer goes out: a fast worker's next gradient
    // may arrive while the answers are still being sent.
    const owed = [...this.owed];
    this.owed.clear();
    this.acc.fill(0);
    this.accSamples = 0;
    this.accLoss = 0;
    this.contributed.clear();
    this.lateThisStep.clear();
    this.staleThisStep = 0;
    this.open = true;
    for (const [w, { late }] of owed) this.reply(w, { late });
    await Promise.all(this.sends);
    if (this.finished) {
      await this.drain();
      await this.o.recovery?.over?.();
    }
    return { commMs: performance.now() - t0, waitMs: 0, stop: this.finished };
  }

  /** After the last update: answer every worker still computing (a late one) with DONE. */
  private async drain(): Promise<void> {
    const start = performance.now();
    while (this.live.length > 0) {
      if (this.failure) throw this.failure;
      if (performance.now() - start > this.o.peerTimeoutMs) {
        throw new TimeoutError('ps shutdown', this.live, performance.now() - start, 'waiting for their last gradient');
      }
      await this.waker.nap(20);
      await Promise.all(this.sends);
    }
    await Promise.all(this.sends);
  }

  /** Answers one gradient: new weights (or gradients, or a resync), DONE after the last update. */
  private reply(w: number, { late }: { late: boolean }): void {
    const ctx = this.ctx!;
    const kind = this.o.reply === 'weights' ? KIND_WEIGHTS : late ? KIND_RESYNC : KIND_GRADIENTS;
    const flags = (this.finished ? FLAG_DONE : 0) | (late ? FLAG_LATE : 0);
    const head = Float64Array.of(this.version, kind, flags, this.lastContributors, this.lastLoss, ctx.optimizer.lr, ctx.optimizer.steps, 0);
    const parts: ArrayBufferView[] = kind === KIND_GRADIENTS ? [this.gradCopy] : [hostArena(ctx.model.arena()).paramsNow()];
    if (kind === KIND_RESYNC) parts.push(...ctx.optimizer.stateBuffers());
    if (this.finished) this.gone.set(w, 'done');
    this.track((async () => {
      await this.group.send(head, w, { tag: TAG.replyHead });
      for (const p of parts) await this.group.send(p, w, { tag: TAG.replyBody });
    })(), w, this.connection(w));
  }

  afterStep(): Promise<void> {
    return Promise.resolve();
  }

  gather(local: Float32Array): Promise<Float32Array> {
    const reachable = this.workers.filter((w) => this.gone.get(w) !== 'lost');
    return gatherAtServer(this.group, local, reachable, this.o.peerTimeoutMs);
  }

  async close(): Promise<void> {
    this.finished = true;
    for (const w of this.workers) if (!this.gone.has(w)) this.gone.set(w, 'done');
  }
}

export class ParamServerWorker extends LoopDrivenStrategy implements Strategy, GradientExchange, UpdateApplier, StepPlanning {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly update: UpdateApplier = this;
  readonly planning: StepPlanning = this;
  readonly name = 'ps';
  readonly rank: number;
  readonly worldSize: number;
  readonly dataShard: DataShard;
  private readonly o: ReturnType<typeof resolved>;
  private version = 0;
  private readonly head = new Float64Array(HEAD_SLOTS);
  private readonly replyHead = new Float64Array(HEAD_SLOTS);
  private pendingKind = KIND_WEIGHTS;
  /** Where the server's averaged gradients are applied under reply 'gradients' (null under 'weights'). */
  private updates: PsUpdater | null = null;
  private done = false;
  /** Times this worker re-dialed a server it had lost. */
  reconnects = 0;
  /** With recovery, the worker's steps follow the server's version (it may jump after a welcome). */
  readonly steps?: (ctx: StrategyContext, data: Dataset, batchSize: number, epochs: number, seed: number) => AsyncIterable<PlannedStep>;

  constructor(private readonly group: ProcessGroup, opts: ParamServerOptions = {}) {
    super();
    this.rank = group.rank;
    this.worldSize = group.size;
    this.o = resolved(opts);
    this.dataShard = psShard(group.rank, group.size, this.o.serverTrains);
    if (this.o.recovery) this.steps = (ctx, data, batchSize, epochs, seed) => this.followServer(ctx, data, batchSize, epochs, seed);
  }

  async setup(ctx: StrategyContext): Promise<void> {
    const arena = ctx.model.arena();
    if (this.o.reply === 'gradients') this.updates = psUpdater(arena, ctx.optimizer);
    this.version = ctx.startStep ?? 0;
    if (this.o.recovery?.restarted) await this.receiveWelcome(ctx);
    else {
      await broadcastModel(this.group, ctx);
      await this.updates?.adopt();
    }
  }

  /** The optimizer that applies the server's averaged gradients: the updater's (a host replica's for a GPU model). */
  private updater(ctx: StrategyContext): Optimizer {
    return this.updates?.optimizer ?? ctx.optimizer;
  }

  /** Where the server's weights are received: the updater's (then uploaded) or the model's. */
  private weightsToOverwrite(ctx: StrategyContext): Float32Array {
    return this.updates?.weightsToOverwrite() ?? hostArena(ctx.model.arena()).paramsToOverwrite();
  }

  /** The updater's weights become the model's (at the loop's flush; nothing to do in place). */
  private upload(): void {
    this.updates?.upload();
  }

  /** The server's welcome (after a (re)connect): the whole model state and the version to go on from. */
  private async receiveWelcome(ctx: StrategyContext): Promise<void> {
    const buffers = buffersToOverwrite(ctx.model);
    // The optimizer state lands in the cpu optimizer's own memory, or (a GPU worker's optimizer
    // under --ps-reply weights) in host arrays written to the device once received.
    const state = this.updater(ctx).stateStorages().map(valuesToReceive);
    const parts = [this.weightsToOverwrite(ctx), ...buffers, ...state];
    const [version, flags, , optimizerSteps] = await receiveWelcome(this.group, new Float64Array(HEAD_SLOTS), parts, this.o.peerTimeoutMs + this.o.stragglerMs);
    ctx.model.writeBuffers(buffers);
    installAll(this.updater(ctx).stateStorages(), state);
    this.updater(ctx).restoreSteps(optimizerSteps);
    this.upload();
    this.version = version;
    this.done = (flags & FLAG_DONE) !== 0;
  }

  /**
   * This worker's batches from the server's version on: step v trains batch v of the shard, so a
   * worker that rejoins late skips the steps taken without it, and one whose server restarted
   * from an older checkpoint takes those steps again.
   */
  private async *followServer(ctx: StrategyContext, data: Dataset, batchSize: number, epochs: number, seed: number): AsyncGenerator<PlannedStep> {
    const shard = this.dataShard;
    const loader = new BatchLoader(data, new DistributedSampler({ size: data.size, worldSize: shard.count, rank: shard.index, seed, shuffle: true }), batchSize);
    const total = ctx.totalSteps ?? loader.numBatches * epochs;
    let batches: Iterator<AnyBatch> | null = null;
    let expected = -1;
    while (!this.done && this.version < total) {
      const step = this.version;
      const epoch = Math.floor(step / loader.numBatches);
      if (epoch >= epochs) return;
      if (step !== expected || batches === null) batches = loader.batches(epoch, step % loader.numBatches) as Iterator<AnyBatch>;
      const next = batches.next();
      expected = step + 1;
      if (next.done) {
        batches = null; // the epoch's last batch was taken: the next step starts the next epoch
        expected = -1;
        continue;
      }
      yield [epoch, next.value, step];
    }
  }

  /** The server is lost or silent past the deadline: re-dial it (the deadline names it) and take its welcome. */
  private async rejoin(ctx: StrategyContext, err: Error): Promise<void> {
    await rejoinServer('ps worker', this.group, this.o.recovery!, err, () => this.receiveWelcome(ctx));
    this.reconnects++;
    process.stderr.write(`smolcluster: ps worker ${this.rank}: reconnected; going on from version ${this.version}\n`);
  }

  async reduceGradients(ctx: StrategyContext, localLoss: number, samples: number): Promise<CommTiming & { loss: number; info: StepInfo; regrouped?: boolean }> {
    if (this.o.slowMs > 0) await sleep(this.o.slowMs);
    const check = this.o.checksumEvery > 0 && this.version % this.o.checksumEvery === 0 ? await checksumOf(ctx) : -1;
    this.head.set([this.version, samples, samples > 0 ? localLoss * samples : 0, check]);
    const t0 = performance.now();
    try {
      return await this.exchange(ctx, t0);
    } catch (err) {
      if (!serverLost(err, this.o.recovery)) throw err;
      // The step is abandoned (no update, no record); steps() goes on from the server's version.
      await this.rejoin(ctx, err);
      return { loss: NaN, commMs: 0, waitMs: performance.now() - t0, info: {}, regrouped: true };
    }
  }

  /** Sends this step's gradient (head set) and takes the server's answer. */
  private async exchange(ctx: StrategyContext, t0: number): Promise<CommTiming & { loss: number; info: StepInfo }> {
    const host = hostArena(ctx.model.arena());
    const grads = await host.grads(false);
    await Promise.all([
      this.group.send(this.head, SERVER_RANK, { tag: TAG.pushHead }),
      this.group.send(grads, SERVER_RANK, { tag: TAG.pushBody }),
    ]);
    const t1 = performance.now();
    const timeoutMs = this.o.peerTimeoutMs + this.o.stragglerMs;
    await this.group.recv(this.replyHead, SERVER_RANK, { tag: TAG.replyHead, timeoutMs });
    const t2 = performance.now();
    const [version, kind, flags, contributors, loss, lr, optimizerSteps] = this.replyHead;
    if (kind === KIND_GRADIENTS) {
      await this.group.recv(this.updates?.grads ?? NO_GRADIENTS, SERVER_RANK, { tag: TAG.replyBody, timeoutMs });
    } else {
      // Weights land straight in the parameter arena (they are not read again until the next
      // forward); a GPU worker's in a host array the loop then writes to the device.
      await this.group.recv(this.weightsToOverwrite(ctx), SERVER_RANK, { tag: TAG.replyBody, timeoutMs });
      if (kind === KIND_RESYNC) {
        const storages = this.updater(ctx).stateStorages();
        const state = storages.map(valuesToReceive);
        for (const buf of state) await this.group.recv(buf, SERVER_RANK, { tag: TAG.replyBody, timeoutMs });
        installAll(storages, state);
        this.updater(ctx).restoreSteps(optimizerSteps);
      }
      this.upload();
    }
    const t3 = performance.now();
    this.pendingKind = kind;
    this.stagedLr = lr;
    this.version = version;
    this.done = (flags & FLAG_DONE) !== 0;
    const late = (flags & FLAG_LATE) !== 0;
    return {
      loss, commMs: t1 - t0 + (t3 - t2), waitMs: t2 - t1,
      info: { version, contributors, late },
    };
  }

  private stagedLr = 0;

  /** Weights (and resyncs) are already in place; averaged gradients are applied here. */
  async applyUpdate(): Promise<UpdateResult> {
    if (this.pendingKind === KIND_GRADIENTS && this.updates) {
      this.updates.step(this.stagedLr);
      this.upload();
    }
    return { commMs: 0, waitMs: 0, stop: this.done };
  }

  afterStep(): Promise<void> {
    return Promise.resolve();
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return gatherAtServer(this.group, local, [], this.o.peerTimeoutMs);
  }

  async close(): Promise<void> {}
}
