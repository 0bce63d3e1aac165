import { performance } from 'node:perf_hooks';
import type { ProcessGroup } from '../../comm/process_group.js';
import { scaleInPlace } from '../../tensor/scale.js';
import { backwardAsync } from '../../tensor/autograd.js';
import type { Tensor } from '../../tensor/tensor.js';
import { SmolError } from '../../util/errors.js';
import { HEALTH_WIDTH } from '../loop/monitors.js';
import { LoopDrivenStrategy } from '../loop/loop_driven.js';
import type { Checkpointing, CommTiming, GradientExchange, StepInfo, Strategy, StrategyContext } from './strategy.js';
import { BucketedExchange, type BucketSpan, coveredMs } from '../exchange/bucketed.js';
import { type Bucket, type BucketSizes, DDP_BUCKETS, planBuckets } from '../exchange/buckets.js';
import { PowerSgd } from '../exchange/powersgd.js';
import { type Codec, type CodecName, codecByName } from '../../comm/codecs/codec.js';
import type { NamedBuffers } from '../../nn/checkpoint.js';
import type { Module } from '../../nn/module.js';
import { checkSameStart } from './same_start.js';
import { hostArena } from '../boundary/host_arena.js';
import { checksumOf } from '../../nn/arena.js';

export interface AllReduceStrategyOptions {
  /** Gradient bucket caps (buckets.ts; default torch DDP's 25 MB with a 1 MB first bucket). */
  buckets?: BucketSizes;
  /** One cap for every bucket, first included (tests). */
  bucketFloats?: number;
  /** Send each bucket as soon as backward has produced it (exchange/bucketed.ts); default off. */
  overlap?: boolean;
  /** Gradient compression on the wire: a codec (int8 with error feedback) or PowerSGD. */
  compression?: Compression;
  /** PowerSGD's rank (default 4). */
  powerSgdRank?: number;
  /** Compare parameter checksums across ranks every K steps (0: never). */
  checksumEvery?: number;
}

// The codecs are listed with the options that choose them (one table of options: config/options/).
export { COMPRESSIONS, type Compression } from '../../config/options/choices.js';
import type { Compression } from '../../config/options/choices.js';
import { broadcastStorages, modelStorages } from '../boundary/model_buffers.js';
import { StorageCollectives } from '../../parallel/boundary/storage_collectives.js';

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
 *
 * With a codec (fp16, bf16, int8) and no overlap, those statistics ride in the first bucket's
 * compressed message instead (allreduce_compressed.ts `exact`): one message per step rather than
 * two, which halves the latency a step pays on a slow link. The wait for the slowest rank is then
 * inside the exchange (reported as communication), and the monitors judge the health rows after the
 * gradients were sent but before any is applied.
 */
export class AllReduceStrategy extends LoopDrivenStrategy implements Strategy, GradientExchange, Checkpointing {
  // Capabilities (strategy.ts): this class implements them itself.
  readonly checkpointing: Checkpointing = this;
  readonly name = 'allreduce';
  readonly rank: number;
  readonly worldSize: number;
  readonly sharesHealth = true;
  /** [loss·samples, samples, then HEALTH_WIDTH floats per rank (zero but for this rank's row)]. */
  private readonly stats: Float32Array;
  private readonly bucketSizes: BucketSizes;
  private readonly checksumEvery: number;
  readonly overlap: boolean;
  private exchange: BucketedExchange | null = null;
  /** The step's buckets are already on their way (sent during backward). */
  private launched = false;
  private backwardSpan: [number, number] = [0, 0];
  private readonly compression: Compression;
  private readonly powerSgdRank: number;
  private codec: Codec | null = null;
  /** int8's error feedback: what each rank's encoding lost last step, arena layout. */
  private residual: Float32Array | null = null;
  private powerSgd: PowerSgd | null = null;
  /** PowerSGD's buckets run one after another, so every rank issues their collectives in one order. */
  private chain: Promise<void> = Promise.resolve();
  private bytesMark = 0;

  constructor(private readonly group: ProcessGroup, opts: AllReduceStrategyOptions = {}) {
    super();
    this.rank = group.rank;
    this.worldSize = group.size;
    this.stats = new Float32Array(2 + HEALTH_WIDTH * group.size);
    this.bucketSizes = opts.bucketFloats !== undefined ? { capFloats: opts.bucketFloats, firstCapFloats: opts.bucketFloats } : opts.buckets ?? DDP_BUCKETS;
    this.checksumEvery = opts.checksumEvery ?? 100;
    this.overlap = opts.overlap === true && group.size > 1;
    this.compression = opts.compression ?? 'none';
    this.powerSgdRank = opts.powerSgdRank ?? 4;
    if (this.compression === 'powersgd' && this.overlap) {
      throw new SmolError('BAD_FLAGS', '--compress powersgd cannot be combined with --overlap: PowerSGD takes two dependent exchanges per bucket');
    }
  }

  /**
   * Error feedback is each rank's own (what its encoding lost): int8's residual, PowerSGD's residual
   * and warm-started Q factors. None otherwise (rank 0's checkpoint serves every rank).
   */
  checkpointBuffers(model: Module): NamedBuffers {
    const arena = model.arena();
    if (this.compression === 'int8') return [['int8.residual', (this.residual ??= new Float32Array(arena.size))]];
    if (this.compression === 'powersgd') return (this.powerSgd ??= new PowerSgd(arena.entries, this.powerSgdRank, arena.size)).stateBuffers();
    return [];
  }

  async setup(ctx: StrategyContext): Promise<void> {
    if (this.checkpointBuffers(ctx.model).length > 0) await checkSameStart(this.group, ctx.startStep ?? 0);
    const arena = ctx.model.arena();
    await broadcastStorages(new StorageCollectives(this.group), modelStorages(ctx.model), 0);
    await this.verifyChecksums(ctx, 0);
    this.exchange = new BucketedExchange(ctx.model, planBuckets(arena.entries, this.bucketSizes));
    // PowerSGD's factors and int8's residual exist already (checkpointBuffers), restored on a resume.
    if (this.compression !== 'none' && this.compression !== 'powersgd') this.codec = codecByName(this.compression as CodecName);
    this.bytesMark = this.group.bytesSent;
  }

  /** With overlap: backward itself, sending every bucket as soon as its gradients are final. */
  get backward(): ((ctx: StrategyContext, loss: Tensor, samples: number, step: number) => Promise<void>) | undefined {
    return this.overlap ? (ctx, loss, samples) => this.backwardOverlapped(ctx, loss, samples) : undefined;
  }

  private async backwardOverlapped(ctx: StrategyContext, loss: Tensor, samples: number): Promise<void> {
    const exchange = this.bucketExchange();
    exchange.begin(this.bucketLauncher(samples));
    this.launched = true;
    const t0 = performance.now();
    await backwardAsync(loss, undefined, exchange.hooks());
    this.backwardSpan = [performance.timeOrigin + t0, performance.timeOrigin + performance.now()];
  }

  /**
   * Each rank sends the sum of its samples' gradients (mean x samples); after the sum over ranks
   * the arena is divided by the total: the sample-weighted mean, without knowing the total first.
   */
  private bucketLauncher(samples: number, exact?: Float32Array): (view: Float32Array, bucket: Bucket) => Promise<void> {
    return async (view, bucket) => {
      if (this.worldSize === 1) return;
      if (samples !== 1) scaleInPlace(this.bucketExchange().gradStorage.view(bucket.start, bucket.end - bucket.start), samples);
      if (this.powerSgd) {
        const psgd = this.powerSgd;
        const grad = this.bucketExchange().gradients;
        this.chain = this.chain.catch(() => {}).then(() => psgd.allReduce(this.group, grad, bucket));
        await this.chain;
      } else if (this.codec) {
        const residual = this.residual?.subarray(bucket.start, bucket.end);
        // Error feedback: last step's loss goes out with this step's gradient.
        if (residual) for (let i = 0; i < view.length; i++) view[i] += residual[i];
        const stats = exact && bucket === this.bucketExchange().plan[0] ? exact : undefined;
        await this.group.allReduceCompressed(view, this.codec, { op: 'sum', residual, exact: stats });
      } else {
        await this.group.allReduce(view, { op: 'sum' });
      }
    };
  }

  private bucketExchange(): BucketedExchange {
    if (!this.exchange) throw new SmolError('NOT_SET_UP', 'allreduce: setup() must run before the first step');
    return this.exchange;
  }

  async reduceGradients(ctx: StrategyContext, localLoss: number, samples: number, step = 0): Promise<CommTiming & { loss: number; info?: StepInfo; buckets?: BucketSpan[] }> {
    const exchange = this.bucketExchange();
    const overlapped = this.launched;
    this.launched = false;
    const t0 = performance.now();
    // A GPU worker's gradients come to the host here, once (with overlap, bucket by bucket as
    // backward produced them: exchange/bucketed.ts); the loop writes the reduced ones back.
    const host = hostArena(ctx.model.arena());
    if (this.worldSize > 1 && !overlapped) await host.grads();
    // A group of one (a single process, or a pipeline stage or tensor-parallel shard with no
    // data-parallel peer) has no bucket to send, on any device: nothing is read or exchanged.
    const alone = this.worldSize === 1;
    this.stats.fill(0);
    this.stats[0] = samples > 0 ? localLoss * samples : 0; // an empty share (load balancing) adds nothing
    this.stats[1] = samples;
    const health = this.stats.subarray(2);
    ctx.monitors?.fillHealth(health);
    const fused = this.codec !== null && !overlapped && this.worldSize > 1;
    if (!overlapped && !alone) exchange.begin(this.bucketLauncher(samples, fused ? this.stats : undefined));
    // Without overlap nothing has left yet: this completes once the slowest rank is done (the wait).
    // With overlap it queues behind the buckets still on the wire. Fused: it comes with the buckets.
    if (!fused) await this.group.allReduce(this.stats, { op: 'sum' });
    const t1 = performance.now();
    if (!fused) ctx.monitors?.checkHealth(step, health);
    const buckets = alone ? [] : await exchange.finish();
    if (fused) ctx.monitors?.checkHealth(step, health, undefined, true);
    const totalSamples = this.stats[1];
    if (this.worldSize > 1 && totalSamples !== 1) scaleInPlace(exchange.gradStorage, 1 / totalSamples);
    const t2 = performance.now();
    // Everything this rank wrote to the wire since the last step's exchange ended (checksums included).
    const bytes = this.group.bytesSent - this.bytesMark;
    this.bytesMark += bytes;
    const info: StepInfo = { bytes_sent: bytes, ...(overlapped ? this.overlapInfo(buckets) : {}) };
    // Fused: the wait for the slowest rank cannot be told apart from the exchange; all of it is comm.
    return { loss: this.stats[0] / totalSamples, waitMs: fused ? 0 : t1 - t0, commMs: t2 - (fused ? t0 : t1), buckets, info };
  }

  /** How much of the buckets' exchange ran while backward was still going. */
  private overlapInfo(buckets: BucketSpan[]): StepInfo {
    const [from, to] = this.backwardSpan;
    const total = coveredMs(buckets, -Infinity, Infinity);
    return { buckets: buckets.length, bucket_comm_ms: round3(total), overlap_ms: round3(coveredMs(buckets, from, to)) };
  }

  async afterStep(ctx: StrategyContext, step: number): Promise<void> {
    if (this.checksumEvery > 0 && (step + 1) % this.checksumEvery === 0) await this.verifyChecksums(ctx, step + 1);
  }

  /**
   * All-gathers every rank's parameter checksum and device; any rank that differs from rank 0 is
   * named. Ranks on different devices (a GPU worker beside cpu workers) sum in different orders,
   * so their replicas drift apart by float rounding and cannot be bit-equal: there rank 0's
   * parameters are broadcast again instead, which bounds the drift to the steps between checks.
   */
  private async verifyChecksums(ctx: StrategyContext, step: number): Promise<void> {
    if (this.worldSize === 1) return;
    const arena = ctx.model.arena();
    const params = await hostArena(arena).params(false);
    const mine = new Float32Array(new Uint32Array([parseInt(checksumOf(params), 16), deviceCode(arena.device)]).buffer);
    const gathered = new Uint32Array((await this.group.allGather(mine)).buffer);
    const sums = gathered.filter((_, i) => i % 2 === 0);
    const devices = new Set(gathered.filter((_, i) => i % 2 === 1));
    if (devices.size > 1) {
      await this.group.broadcast(await hostArena(arena).params(), 0);
      return;
    }
    const bad = [...sums.keys()].filter((r) => sums[r] !== sums[0]);
    if (bad.length > 0) throw new DivergenceError(bad, step, `checksums ${[...sums].map((c) => c.toString(16)).join(', ')}`);
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  /** The group belongs to whoever formed it (the worker closes its cluster). */
  async close(): Promise<void> {}
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A number naming a device (FNV-1a of its name), so ranks compare devices without singling one out. */
function deviceCode(device: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < device.length; i++) h = Math.imul(h ^ device.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
