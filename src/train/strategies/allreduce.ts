import { performance } from 'node:perf_hooks';
import type { ProcessGroup } from '../../comm/process_group.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { SmolError } from '../../util/errors.js';
import { HEALTH_WIDTH } from '../monitors.js';
import type { CommTiming, Strategy, StrategyContext } from '../strategy.js';

export interface AllReduceStrategyOptions {
  /** Gradient bucket size in floats; buckets are all-reduced concurrently (torch DDP: 25 MB). */
  bucketFloats?: number;
  /** Compare parameter checksums across ranks every K steps (0: never). */
  checksumEvery?: number;
}

/** Raised when ranks that should hold identical parameters do not. */
export class DivergenceError extends SmolError {
  constructor(readonly ranks: number[], step: number, detail: string) {
    super('DIVERGED', `parameters diverged at step ${step}: rank${ranks.length > 1 ? 's' : ''} ${ranks.join(', ')} differ from rank 0 (${detail})`);
  }
}

/**
 * Synchronous data parallelism, as torch DDP: every rank starts from rank 0's parameters; after
 * each backward the gradient arena is averaged over ranks (weighted by each rank's samples), so
 * every rank takes the same optimizer step and the model stays identical everywhere.
 *
 * Each step first all-reduces [loss·samples, samples] — a few bytes that complete only once every
 * rank has finished its backward — so the time spent there is the wait for the slowest rank, and
 * the gradient all-reduce that follows is pure communication. The same exchange carries every
 * rank's health (monitors.ts: step time, non-finite gradient count, gradient norm), so the monitors
 * of every rank judge the whole cluster before any gradient moves.
 */
export class AllReduceStrategy implements Strategy {
  readonly name = 'allreduce';
  readonly rank: number;
  readonly worldSize: number;
  readonly sharesHealth = true;
  /** [loss·samples, samples, then HEALTH_WIDTH floats per rank (zero but for this rank's row)]. */
  private readonly stats: Float32Array;
  private readonly bucketFloats: number;
  private readonly checksumEvery: number;

  constructor(private readonly group: ProcessGroup, opts: AllReduceStrategyOptions = {}) {
    this.rank = group.rank;
    this.worldSize = group.size;
    this.stats = new Float32Array(2 + HEALTH_WIDTH * group.size);
    this.bucketFloats = opts.bucketFloats ?? (25 << 20) / 4;
    this.checksumEvery = opts.checksumEvery ?? 100;
  }

  async setup(ctx: StrategyContext): Promise<void> {
    await this.group.broadcast(ctx.model.arena().data, 0);
    for (const [, buf] of ctx.model.namedBuffers()) await this.group.broadcast(buf, 0);
    await this.verifyChecksums(ctx, 0);
  }

  async reduceGradients(ctx: StrategyContext, localLoss: number, samples: number, step = 0): Promise<CommTiming & { loss: number }> {
    const t0 = performance.now();
    this.stats.fill(0);
    this.stats[0] = samples > 0 ? localLoss * samples : 0; // an empty share (load balancing) adds nothing
    this.stats[1] = samples;
    const health = this.stats.subarray(2);
    ctx.monitors?.fillHealth(health);
    await this.group.allReduce(this.stats, { op: 'sum' });
    const t1 = performance.now();
    ctx.monitors?.checkHealth(step, health);
    const totalSamples = this.stats[1];
    const grad = ctx.model.arena().grad;
    // Weighted mean: rank r contributes (its mean gradient) × samples_r / total.
    if (samples !== totalSamples) kernelsFor(grad).affine(grad, samples / totalSamples, 0, grad);
    const pending: Promise<Float32Array>[] = [];
    for (let start = 0; start < grad.length; start += this.bucketFloats) {
      pending.push(this.group.allReduce(grad.subarray(start, Math.min(start + this.bucketFloats, grad.length)), { op: 'sum' }));
    }
    await Promise.all(pending);
    const t2 = performance.now();
    return { loss: this.stats[0] / totalSamples, waitMs: t1 - t0, commMs: t2 - t1 };
  }

  async afterStep(ctx: StrategyContext, step: number): Promise<void> {
    if (this.checksumEvery > 0 && (step + 1) % this.checksumEvery === 0) await this.verifyChecksums(ctx, step + 1);
  }

  /** All-gathers every rank's parameter checksum; any rank that differs from rank 0 is named. */
  private async verifyChecksums(ctx: StrategyContext, step: number): Promise<void> {
    if (this.worldSize === 1) return;
    const mine = new Float32Array(new Uint32Array([parseInt(ctx.model.arena().checksum(), 16)]).buffer);
    const all = new Uint32Array((await this.group.allGather(mine)).buffer);
    const bad = [...all.keys()].filter((r) => all[r] !== all[0]);
    if (bad.length > 0) throw new DivergenceError(bad, step, `checksums ${[...all].map((c) => c.toString(16)).join(', ')}`);
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  /** The group belongs to whoever formed it (the worker closes its cluster). */
  async close(): Promise<void> {}
}
