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
 * per worker. With `quantize`, pushes travel as int8 with one float32 scale per 256 values, and
 * each worker keeps the quantisation error and adds it to its next push (error feedback), so no
 * part of an update is lost for good.
 *
 * The server takes one loop step per push: (N-1) × ceil(T / K) steps for T steps per worker.
 */
import { performance } from 'node:perf_hooks';
import type { ProcessGroup } from '../../comm/process_group.js';
import { SmolError, TimeoutError } from '../../util/errors.js';
import type { CommTiming, DataShard, StepInfo, Strategy, StrategyContext, UpdateResult } from '../strategy.js';
import { HEAD_SLOTS, SERVER_RANK, TAG, broadcastModel, psShard } from './ps_common.js';

export interface AsyncPsOptions {
  /** Push every K local steps (SmolCluster's worker_update_interval; default 1). */
  pushEvery?: number;
  /** A worker more than S versions behind pulls before continuing (default 4). */
  stalenessBound?: number;
  /** int8 pushes with error feedback (SmolCluster's use_quantization). */
  quantize?: boolean;
  /** Deadline of every wait on a peer (ms). */
  peerTimeoutMs?: number;
}

const FLAG_LAST = 1;
const FLAG_INT8 = 2;
const FLAG_PULL = 4;
/** Values per int8 scale. */
export const QUANT_CHUNK = 256;

function resolved(o: AsyncPsOptions): Required<AsyncPsOptions> {
  return { pushEvery: o.pushEvery ?? 1, stalenessBound: o.stalenessBound ?? 4, quantize: o.quantize ?? false, peerTimeoutMs: o.peerTimeoutMs ?? 60_000 };
}

export function createAsyncPsStrategy(group: ProcessGroup, opts: AsyncPsOptions = {}): Strategy {
  return group.rank === SERVER_RANK ? new AsyncPsServer(group, opts) : new AsyncPsWorker(group, opts);
}

/** Bytes of an int8-encoded vector of n floats: the scales, then the values (4-byte aligned). */
export function int8Bytes(n: number): number {
  const chunks = Math.ceil(n / QUANT_CHUNK);
  return chunks * 4 + Math.ceil(n / 4) * 4;
}

/**
 * Quantises `x` (+ `residual`) into `out` and leaves the quantisation error in `residual`:
 * per chunk, scale = max|v| / 127 and q = round(v / scale).
 */
export function quantizeInt8(x: Float32Array, residual: Float32Array, out: Uint8Array): void {
  const n = x.length;
  const chunks = Math.ceil(n / QUANT_CHUNK);
  const scales = new Float32Array(out.buffer, out.byteOffset, chunks);
  const q = new Int8Array(out.buffer, out.byteOffset + chunks * 4, n);
  for (let c = 0; c < chunks; c++) {
    const from = c * QUANT_CHUNK;
    const to = Math.min(n, from + QUANT_CHUNK);
    let max = 0;
    for (let i = from; i < to; i++) {
      const v = x[i] + residual[i];
      if (Math.abs(v) > max) max = Math.abs(v);
    }
    const scale = Math.fround(max / 127);
    scales[c] = scale;
    const inv = scale > 0 ? 1 / scale : 0;
    for (let i = from; i < to; i++) {
      const v = x[i] + residual[i];
      const qi = Math.max(-127, Math.min(127, Math.round(v * inv)));
      q[i] = qi;
      residual[i] = v - qi * scale;
    }
  }
}

/** out[i] += weight × dequantised value i. */
export function addDequantized(bytes: Uint8Array, n: number, weight: number, out: Float32Array): void {
  const chunks = Math.ceil(n / QUANT_CHUNK);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, chunks);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + chunks * 4, n);
  for (let c = 0; c < chunks; c++) {
    const s = scales[c] * weight;
    const to = Math.min(n, (c + 1) * QUANT_CHUNK);
    for (let i = c * QUANT_CHUNK; i < to; i++) out[i] += q[i] * s;
  }
}

interface Push {
  worker: number;
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
}

export class AsyncPsServer implements Strategy {
  readonly name = 'async-ps';
  readonly rank = SERVER_RANK;
  readonly worldSize: number;
  readonly dataShard: DataShard;
  private readonly o: Required<AsyncPsOptions>;
  private version = 0;
  private readonly queue: Push[] = [];
  private readonly state = new Map<number, WorkerState>();
  private current: Push | null = null;
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  /** Pushes applied, by staleness (for tests and summaries). */
  readonly stalenessCounts = new Map<number, number>();
  /** Longest the queue ever got (≤ workers). */
  maxQueue = 0;

  constructor(private readonly group: ProcessGroup, opts: AsyncPsOptions = {}) {
    this.worldSize = group.size;
    this.o = resolved(opts);
    this.dataShard = psShard(SERVER_RANK, group.size, false);
  }

  stepsFor(shardSteps: number): number {
    return (this.worldSize - 1) * Math.ceil(shardSteps / this.o.pushEvery);
  }

  async setup(ctx: StrategyContext): Promise<void> {
    await broadcastModel(this.group, ctx);
    const n = ctx.model.arena().size;
    for (let w = 1; w < this.worldSize; w++) {
      this.state.set(w, { pulled: 0, ownSincePull: 0, done: false, lost: false });
      void this.receiveLoop(w, n);
    }
  }

  private async receiveLoop(w: number, n: number): Promise<void> {
    const head = new Float64Array(HEAD_SLOTS);
    const body = new Uint8Array(this.o.quantize ? int8Bytes(n) : n * 4);
    const st = this.state.get(w)!;
    while (!st.done) {
      try {
        await this.group.recv(head, w, { tag: TAG.pushHead, timeoutMs: this.o.peerTimeoutMs });
        await this.group.recv(body, w, { tag: TAG.pushBody, timeoutMs: this.o.peerTimeoutMs });
      } catch (err) {
        if (!st.done) {
          st.lost = true;
          process.stderr.write(`smolcluster: async-ps server: worker rank ${w} dropped out (${(err as Error).message})\n`);
          this.poke();
        }
        return;
      }
      const [samples, lossSum, flags] = head;
      if (flags & FLAG_LAST) st.done = true;
      // The body buffer is reused only after this push is applied (the worker waits for its answer anyway).
      await new Promise<void>((applied) => {
        this.queue.push({ worker: w, samples, lossSum, flags, body, applied });
        this.maxQueue = Math.max(this.maxQueue, this.queue.length);
        this.poke();
      });
    }
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private get active(): number[] {
    return [...this.state].filter(([, s]) => !s.done && !s.lost).map(([w]) => w);
  }

  /** Takes the next push (waiting for one) and stages its weighted update in the gradient arena. */
  async reduceGradients(ctx: StrategyContext): Promise<CommTiming & { loss: number; info: StepInfo }> {
    const t0 = performance.now();
    while (this.queue.length === 0) {
      if (this.failure) throw this.failure;
      if (this.active.length === 0) {
        this.current = null;
        ctx.model.arena().grad.fill(0);
        return { loss: NaN, waitMs: performance.now() - t0, commMs: 0, info: { push_from: -1 } };
      }
      const waited = performance.now() - t0;
      if (waited > this.o.peerTimeoutMs) throw new TimeoutError('async-ps push', this.active, waited, 'no push arrived');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, this.o.peerTimeoutMs - waited + 1));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const t1 = performance.now();
    const push = this.queue.shift()!;
    this.current = push;
    const st = this.state.get(push.worker)!;
    const staleness = Math.max(0, this.version - st.pulled - st.ownSincePull);
    const weight = 1 / (1 + staleness);
    const grad = ctx.model.arena().grad;
    if (push.flags & FLAG_INT8) {
      grad.fill(0);
      addDequantized(push.body, grad.length, weight, grad);
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
    if (!push) return { commMs: 0, waitMs: 0, stop: true };
    const { data, grad } = ctx.model.arena();
    for (let i = 0; i < data.length; i++) data[i] += grad[i];
    this.version++;
    const st = this.state.get(push.worker)!;
    st.ownSincePull++;
    const behind = this.version - st.pulled - st.ownSincePull;
    const pull = behind > this.o.stalenessBound || (push.flags & FLAG_LAST) !== 0;
    if (pull) {
      st.pulled = this.version;
      st.ownSincePull = 0;
    }
    const t0 = performance.now();
    try {
      await this.group.send(Float64Array.of(this.version, pull ? FLAG_PULL : 0, 0, 0, 0, 0, 0, 0), push.worker, { tag: TAG.replyHead });
      if (pull) await this.group.send(data, push.worker, { tag: TAG.replyBody });
    } catch (err) {
      st.lost = true;
      process.stderr.write(`smolcluster: async-ps server: worker rank ${push.worker} dropped out (${(err as Error).message})\n`);
    }
    this.current = null;
    push.applied();
    const stop = this.active.length === 0 && this.queue.length === 0;
    return { commMs: performance.now() - t0, waitMs: 0, stop, info: { pulled: pull } };
  }

  afterStep(): Promise<void> {
    return Promise.resolve();
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  async close(): Promise<void> {
    for (const st of this.state.values()) st.done = true;
    this.failure ??= new SmolError('CLOSED', 'async-ps server closed');
  }
}

export class AsyncPsWorker implements Strategy {
  readonly name = 'async-ps';
  readonly rank: number;
  readonly worldSize: number;
  readonly dataShard: DataShard;
  private readonly o: Required<AsyncPsOptions>;
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

  constructor(private readonly group: ProcessGroup, opts: AsyncPsOptions = {}) {
    this.rank = group.rank;
    this.worldSize = group.size;
    this.o = resolved(opts);
    this.dataShard = psShard(group.rank, group.size, false);
  }

  async setup(ctx: StrategyContext): Promise<void> {
    await broadcastModel(this.group, ctx);
    const n = ctx.model.arena().size;
    this.base = ctx.model.arena().data.slice();
    this.delta = new Float32Array(n);
    if (this.o.quantize) {
      this.residual = new Float32Array(n);
      this.encoded = new Uint8Array(int8Bytes(n));
    }
    this.totalSteps = ctx.totalSteps ?? Infinity;
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
    const last = step + 1 >= this.totalSteps;
    if (this.sincePush < this.o.pushEvery && !last) return;
    this.sincePush = 0;
    const data = ctx.model.arena().data;
    for (let i = 0; i < data.length; i++) this.delta[i] = data[i] - this.base[i];
    let flags = last ? FLAG_LAST : 0;
    let body: Uint8Array;
    if (this.o.quantize) {
      quantizeInt8(this.delta, this.residual, this.encoded);
      body = this.encoded;
      flags |= FLAG_INT8;
    } else body = new Uint8Array(this.delta.buffer, this.delta.byteOffset, this.delta.byteLength);
    this.head.set([this.sinceSamples, this.sinceLoss, flags, this.version]);
    this.sinceSamples = 0;
    this.sinceLoss = 0;
    await this.group.send(this.head, SERVER_RANK, { tag: TAG.pushHead });
    await this.group.send(body, SERVER_RANK, { tag: TAG.pushBody });
    await this.group.recv(this.replyHead, SERVER_RANK, { tag: TAG.replyHead, timeoutMs: this.o.peerTimeoutMs });
    const [version, replyFlags] = this.replyHead;
    if (replyFlags & FLAG_PULL) {
      await this.group.recv(data, SERVER_RANK, { tag: TAG.replyBody, timeoutMs: this.o.peerTimeoutMs });
      this.version = version;
      this.pulls++;
    }
    this.base.set(data);
  }

  gather(local: Float32Array): Promise<Float32Array> {
    return this.group.allGather(local);
  }

  async close(): Promise<void> {}
}
