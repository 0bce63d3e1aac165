/**
 * DiLoCo (Douillard et al. 2023): every rank takes H local steps with the run's optimizer (AdamW in
 * the paper), without communicating; then the ranks all-reduce the parameter delta since the last
 * sync (the average of snapshot − params: the "outer gradient") and apply it with an outer
 * Nesterov-momentum SGD, the same on every rank, so every rank holds the same parameters again.
 * Local SGD is the special case outer lr 1, momentum 0: the new parameters are the ranks' average
 * (local_sgd.ts). Communication: one all-reduce of the parameters every H steps, 0 bytes between.
 *
 * The loss a step reports is this rank's own (no exchange); `synced` marks the steps that ended with
 * an outer step, `bytes_sent` what the rank wrote to the wire in the step.
 *
 * Checkpoints: every rank saves its own file (its parameters and inner optimizer state, which differ
 * between syncs, plus the anchor `snapshot` and the outer `velocity`), so a resumed run continues
 * step for step; the ranks check that they resumed from the same step.
 */
import { performance } from 'node:perf_hooks';
import type { ProcessGroup } from '../../comm/process_group.js';
import type { NamedBuffers } from '../../nn/checkpoint.js';
import type { Module } from '../../nn/module.js';
import { SmolError } from '../../util/errors.js';
import { LoopDrivenStrategy } from '../loop/loop_driven.js';
import type { Checkpointing, CommTiming, GradientExchange, StepInfo, Strategy, StrategyContext, UpdateApplier, UpdateResult } from './strategy.js';
import { checkSameStart } from './same_start.js';
import { hostArena } from '../boundary/host_arena.js';
import { exchangeBuffers } from '../boundary/model_buffers.js';

export interface DiLoCoOptions {
  /** Local steps between syncs (H). */
  innerSteps: number;
  /** Outer learning rate (paper: 0.7). */
  outerLr?: number;
  /** Outer Nesterov momentum (paper: 0.9). */
  outerMomentum?: number;
  /** Name in results (local-sgd reuses this class). */
  name?: string;
}

export class DiLoCoStrategy extends LoopDrivenStrategy implements Strategy, GradientExchange, UpdateApplier, Checkpointing {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly update: UpdateApplier = this;
  readonly checkpointing: Checkpointing = this;
  readonly name: string;
  readonly rank: number;
  readonly worldSize: number;
  readonly innerSteps: number;
  readonly outerLr: number;
  readonly outerMomentum: number;
  private snapshot = new Float32Array(0);
  private velocity = new Float32Array(0);
  private bytesMark = 0;

  constructor(private readonly group: ProcessGroup, opts: DiLoCoOptions) {
    super();
    this.name = opts.name ?? 'diloco';
    this.rank = group.rank;
    this.worldSize = group.size;
    this.innerSteps = opts.innerSteps;
    this.outerLr = opts.outerLr ?? 0.7;
    this.outerMomentum = opts.outerMomentum ?? 0.9;
    if (!Number.isInteger(this.innerSteps) || this.innerSteps < 1) throw new SmolError('BAD_FLAGS', `--inner-steps must be a positive integer (got ${opts.innerSteps})`);
    if (!(this.outerLr > 0)) throw new SmolError('BAD_FLAGS', `--outer-lr must be positive (got ${opts.outerLr})`);
    if (!(this.outerMomentum >= 0 && this.outerMomentum < 1)) throw new SmolError('BAD_FLAGS', `--outer-momentum must be in [0, 1) (got ${opts.outerMomentum})`);
  }

  /** The anchor (parameters at the last sync) and the outer momentum: each rank's own. */
  checkpointBuffers(model: Module): NamedBuffers {
    const n = model.arena().size;
    if (this.snapshot.length !== n) {
      this.snapshot = new Float32Array(n);
      this.velocity = new Float32Array(n);
    }
    return [['diloco.snapshot', this.snapshot], ['diloco.velocity', this.velocity]];
  }

  async setup(ctx: StrategyContext): Promise<void> {
    const params = await hostArena(ctx.model.arena()).params();
    this.checkpointBuffers(ctx.model);
    const start = ctx.startStep ?? 0;
    await checkSameStart(this.group, start);
    if (start === 0) {
      await this.group.broadcast(params, 0);
      await exchangeBuffers(ctx.model, (buf) => this.group.broadcast(buf, 0));
      this.snapshot.set(params);
      this.velocity.fill(0);
    }
    this.bytesMark = this.group.bytesSent;
  }

  /** Nothing to combine between syncs: the rank's own loss. */
  async reduceGradients(_ctx: StrategyContext, localLoss: number): Promise<CommTiming & { loss: number }> {
    return { loss: localLoss, commMs: 0, waitMs: 0 };
  }

  /** The loop's optimizer takes the inner step; every H-th step (and the last) ends with the outer step. */
  async applyUpdate(ctx: StrategyContext, step: number): Promise<UpdateResult> {
    ctx.optimizer.step();
    const last = ctx.totalSteps !== undefined && step === ctx.totalSteps - 1;
    const synced = (step + 1) % this.innerSteps === 0 || last;
    const timing = synced ? await this.outerStep(ctx) : { commMs: 0, waitMs: 0 };
    const bytes = this.group.bytesSent - this.bytesMark;
    this.bytesMark += bytes;
    const info: StepInfo = { bytes_sent: bytes, synced };
    return { ...timing, info };
  }

  /** All-reduces the average outer gradient (snapshot − params) and applies outer Nesterov SGD from the snapshot. */
  private async outerStep(ctx: StrategyContext): Promise<CommTiming> {
    // A GPU worker's parameters (after its inner step) come to the host; the loop writes the outer step's back.
    const params = await hostArena(ctx.model.arena()).params();
    const delta = new Float32Array(params.length);
    for (let i = 0; i < delta.length; i++) delta[i] = this.snapshot[i] - params[i];
    const t0 = performance.now();
    // Includes waiting for the slowest rank: the exchange completes only once every rank arrives.
    await this.group.allReduce(delta, { op: 'avg' });
    await exchangeBuffers(ctx.model, (buf) => this.group.allReduce(buf, { op: 'avg' }));
    const t1 = performance.now();
    const mu = this.outerMomentum;
    const v = this.velocity;
    for (let i = 0; i < params.length; i++) {
      v[i] = mu * v[i] + delta[i];
      const update = mu > 0 ? delta[i] + mu * v[i] : delta[i];
      params[i] = this.snapshot[i] - this.outerLr * update;
    }
    this.snapshot.set(params);
    return { commMs: t1 - t0, waitMs: 0 };
  }

  async afterStep(): Promise<void> {}

  gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  async close(): Promise<void> {}
}
