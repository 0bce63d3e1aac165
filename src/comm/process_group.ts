/**
 * ProcessGroup: the collectives a training strategy calls, over any Transport.
 *
 * Every rank must issue the same collectives in the same order (each call takes the next sequence
 * number synchronously, so calls may overlap: e.g. one all-reduce per gradient bucket, awaited
 * later). All operations work on the caller's buffers, including subarray views of a larger arena:
 * in place, except that reduceScatter leaves its input as it was and writes its output. A group of size 1 makes every collective a no-op, so user code needs no "if distributed".
 * split() makes sub-groups (a data x pipeline x tensor mesh of processes), each a ProcessGroup.
 */
import { SmolError } from '../util/errors.js';
import { compressedAllReduce } from './collectives/allreduce_compressed.js';
import { directAllReduce } from './collectives/allreduce_direct.js';
import { doublingAllReduce } from './collectives/allreduce_doubling.js';
import type { Codec } from './codecs/codec.js';
import { ringAllReduce } from './collectives/allreduce_ring.js';
import { ringAllGather } from './collectives/allgather.js';
import { pairwiseAllToAll } from './collectives/alltoall.js';
import { segmentCounts } from './collectives/counts.js';
import { disseminationBarrier } from './collectives/barrier.js';
import { chainBroadcast } from './collectives/broadcast.js';
import type { OpContext } from './collectives/context.js';
import { checkOp, plainAddInto, type Reducer, type ReduceOp } from './collectives/reduce_ops.js';
import { ringReduceScatter } from './collectives/reduce_scatter.js';
import { planCounts } from './collectives/ring_plan.js';
import { ScratchPool } from './collectives/scratch.js';
import { Deadline } from './deadline.js';
import { PairCounters, p2pRecv, p2pSend } from './collectives/sendrecv.js';
import { GroupTransport } from './group_transport.js';
import { SPLIT_ENTRY_FLOATS, splitEntry, splitMembers } from './split.js';
import { MAX_SPLITS, TagSpace } from './tag_space.js';
import { bytesOf, checkPeer, DEFAULT_TIMEOUT_MS, type Transport } from './transport.js';

export interface ProcessGroupOptions {
  /** Default deadline of every operation (ms). */
  timeoutMs?: number;
  /** Smallest piece of the pipelined algorithms, in bytes (ring lanes: at most 4 per segment; broadcast chunks). */
  chunkBytes?: number;
  /**
   * The one-round direct all-reduce is used while it sends at most this many bytes per rank, i.e.
   * (size - 1) * buffer bytes <= directMaxBytes; the ring otherwise.
   */
  directMaxBytes?: number;
  /** With more than two ranks, recursive doubling is used for buffers up to this many bytes (0: never by itself). */
  doublingMaxBytes?: number;
  /**
   * The sum kernel (dst += src on float32) the reducing collectives use; default: a plain loop.
   * Training passes the tensor backend's addInto (src/train/boundary/reducer.ts): comm/ knows nothing of tensors.
   */
  reducer?: Reducer;
}

export interface CollectiveOptions {
  timeoutMs?: number;
}

export interface ReduceScatterOptions extends CollectiveOptions {
  op?: ReduceOp;
  /** Elements of each rank's segment (sum: the input's length); default: size equal segments. */
  counts?: readonly number[];
  /**
   * The input is the caller's to discard: partial sums accumulate in it instead of in scratch
   * (ZeRO's gradient windows: on shared memory this takes no scratch at all). Same result bits.
   */
  overwriteInput?: boolean;
}

export interface AllGatherOptions extends CollectiveOptions {
  /** Elements each rank contributes (sum: the output's length); default: all equal to the input's. */
  counts?: readonly number[];
}

export interface AllToAllOptions extends CollectiveOptions {
  /** Elements of the input's block for each rank (sum: the input's length); default: size equal blocks. */
  sendCounts?: readonly number[];
  /**
   * Elements of the block each rank sends here. Default: with equal send blocks, the same; with
   * `sendCounts`, learnt from the other ranks first (one more small all-to-all).
   */
  recvCounts?: readonly number[];
  /** Where the received blocks go, rank-major (the recvCounts' sum long); default: a new array. */
  output?: Float32Array;
}

export interface SplitOptions extends CollectiveOptions {
  /** Names the sub-group in errors ("sub-group 'tp'"); default: by split number and color. */
  name?: string;
  /** The sub-group's default deadline of every operation (ms); default this group's. */
  groupTimeoutMs?: number;
}

export type AllReduceAlgorithm = 'auto' | 'ring' | 'direct' | 'doubling';

export interface AllReduceOptions extends CollectiveOptions {
  op?: ReduceOp;
  algorithm?: AllReduceAlgorithm;
}

export interface P2POptions extends CollectiveOptions {
  /** Tag to tell apart streams between the same two ranks (0..2^32-1). */
  tag?: number;
}

export const DEFAULT_CHUNK_BYTES = 1 << 20;
export const DEFAULT_DIRECT_MAX_BYTES = 64 << 10;
export const DEFAULT_DOUBLING_MAX_BYTES = 64 << 10;

export class ProcessGroup {
  readonly rank: number;
  readonly size: number;
  private seq = 0;
  private splits = 0;
  private readonly scratch = new ScratchPool();
  private readonly tags: TagSpace;
  private readonly pairs: PairCounters;
  /** The default deadline of every operation (ms). */
  readonly timeoutMs: number;
  private readonly chunkBytes: number;
  private readonly directMaxBytes: number;
  private readonly doublingMaxBytes: number;
  private readonly reducer: Reducer;

  constructor(
    readonly transport: Transport,
    private readonly opts: ProcessGroupOptions = {},
  ) {
    this.rank = transport.rank;
    this.size = transport.size;
    this.tags = new TagSpace(transport.tagHiWords);
    this.pairs = new PairCounters(this.tags.p2pBase);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.directMaxBytes = opts.directMaxBytes ?? DEFAULT_DIRECT_MAX_BYTES;
    this.doublingMaxBytes = opts.doublingMaxBytes ?? DEFAULT_DOUBLING_MAX_BYTES;
    this.reducer = opts.reducer ?? plainAddInto;
  }

  /** In-place all-reduce; every rank ends with the same bits. Returns `data`. */
  async allReduce(data: Float32Array, opts: AllReduceOptions = {}): Promise<Float32Array> {
    const op = opts.op ?? 'sum';
    checkOp(op);
    const ctx = this.context('allreduce', opts);
    if (this.size === 1 || data.length === 0) return data;
    const algorithm = this.chooseAllReduce(data, opts.algorithm ?? 'auto');
    if (algorithm === 'direct') await this.within(ctx, directAllReduce(ctx, data, op));
    else if (algorithm === 'doubling') await this.within(ctx, doublingAllReduce(ctx, data, op));
    else await this.within(ctx, ringAllReduce(ctx, data, op, this.chunkBytes));
    return data;
  }

  /**
   * In-place all-reduce through a lossy codec (collectives/allreduce_compressed.ts); every rank ends
   * with the same bits. With `residual`, what this rank's encoding lost is written there (error feedback).
   */
  /** `exact`: a few float32s summed exactly in the same message (allreduce_compressed.ts). */
  async allReduceCompressed(data: Float32Array, codec: Codec, opts: CollectiveOptions & { op?: 'sum' | 'avg'; residual?: Float32Array; exact?: Float32Array } = {}): Promise<Float32Array> {
    const ctx = this.context('allreduce', opts);
    if (opts.residual && opts.residual.length !== data.length) throw new RangeError(`residual has ${opts.residual.length} elements, data ${data.length}`);
    if (this.size === 1 || data.length === 0) {
      opts.residual?.fill(0);
      return data;
    }
    await this.within(ctx, compressedAllReduce(ctx, data, codec, opts.op ?? 'sum', opts.residual, opts.exact));
    return data;
  }

  /** Bytes this rank has sent so far (0 if the transport does not count). */
  get bytesSent(): number {
    return this.transport.bytesSent ?? 0;
  }

  /** Copies root's `data` into every rank's `data` (same length everywhere). Returns `data`. */
  async broadcast<T extends ArrayBufferView>(data: T, root: number, opts: CollectiveOptions = {}): Promise<T> {
    this.checkRoot(root);
    const ctx = this.context('broadcast', opts);
    if (this.size > 1 && data.byteLength > 0) await this.within(ctx, chainBroadcast(ctx, bytesOf(data), root, this.chunkBytes));
    return data;
  }

  /**
   * Rank-major gather (collectives/allgather.ts): output holds rank 0's input, then rank 1's, ...
   * Inputs are equal-length, or `counts[i]` long. The input may be this rank's block of the output.
   * Returns the output.
   */
  async allGather(input: Float32Array, output?: Float32Array, opts: AllGatherOptions = {}): Promise<Float32Array> {
    const total = opts.counts ? opts.counts.reduce((a, b) => a + b, 0) : input.length * this.size;
    const counts = segmentCounts('allGather', total, this.size, opts.counts);
    if (input.length !== counts[this.rank]) throw new RangeError(`allGather input has ${input.length} elements, counts say ${counts[this.rank]} for rank ${this.rank}`);
    const out = output ?? new Float32Array(total);
    if (out.length !== total) {
      throw new RangeError(`allGather output has ${out.length} elements, expected ${opts.counts ? `the counts' sum, ${total}` : `${input.length} x ${this.size}`}`);
    }
    const plan = planCounts(counts.map((c) => 4 * c), this.chunkBytes);
    const ctx = this.context('allgather', opts);
    out.set(input, plan.segStart[this.rank] / 4);
    if (this.size > 1) await this.within(ctx, ringAllGather(ctx, bytesOf(out), plan));
    return out;
  }

  /**
   * All-to-all (collectives/alltoall.ts): block p of the input (rank-major) goes to rank p, and
   * block p of the output comes from rank p. Blocks are equal, or `sendCounts` / `recvCounts` long
   * (the receive counts are learnt from the senders when not given). The output must not overlap
   * the input. Returns the output.
   */
  async allToAll(input: Float32Array, opts: AllToAllOptions = {}): Promise<Float32Array> {
    const sendCounts = segmentCounts('allToAll', input.length, this.size, opts.sendCounts);
    const recvCounts = opts.recvCounts ?? (opts.sendCounts ? await this.exchangeCounts(sendCounts, opts) : sendCounts);
    if (recvCounts.length !== this.size || recvCounts.some((c) => !Number.isInteger(c) || c < 0)) {
      throw new RangeError(`allToAll recvCounts must be ${this.size} non-negative integers, got [${recvCounts.join(', ')}]`);
    }
    const total = recvCounts.reduce((a, b) => a + b, 0);
    const out = opts.output ?? new Float32Array(total);
    if (out.length !== total) throw new RangeError(`allToAll output has ${out.length} elements, the receive counts sum to ${total}`);
    if (out.buffer === input.buffer && out.byteOffset < input.byteOffset + input.byteLength && input.byteOffset < out.byteOffset + out.byteLength) {
      throw new RangeError('allToAll output overlaps its input');
    }
    const ctx = this.context('alltoall', opts);
    if (this.size === 1) out.set(input);
    else await this.within(ctx, pairwiseAllToAll(ctx, input, sendCounts, out, recvCounts));
    return out;
  }

  /** What each rank will send here: every rank's send counts, one element per pair. */
  private async exchangeCounts(sendCounts: readonly number[], opts: CollectiveOptions): Promise<number[]> {
    const got = await this.allToAll(Float32Array.from(sendCounts), { recvCounts: Array(this.size).fill(1), timeoutMs: opts.timeoutMs });
    return Array.from(got);
  }

  /**
   * Reduces every rank's input element-wise and leaves segment `rank` of the result in output
   * (collectives/reduce_scatter.ts): size equal segments, or `counts`. The input is not modified
   * (unless `overwriteInput`); the output must not overlap it. Returns the output.
   */
  async reduceScatter(input: Float32Array, output?: Float32Array, opts: ReduceScatterOptions = {}): Promise<Float32Array> {
    const op = opts.op ?? 'sum';
    checkOp(op);
    const counts = segmentCounts('reduceScatter', input.length, this.size, opts.counts);
    const out = output ?? new Float32Array(counts[this.rank]);
    if (out.length !== counts[this.rank]) throw new RangeError(`reduceScatter output has ${out.length} elements, rank ${this.rank}'s segment ${counts[this.rank]}`);
    if (out.buffer === input.buffer && out.byteOffset < input.byteOffset + input.byteLength && input.byteOffset < out.byteOffset + out.byteLength) {
      throw new RangeError('reduceScatter output overlaps its input');
    }
    const ctx = this.context('reducescatter', opts);
    const plan = planCounts(counts, this.chunkBytes >>> 2);
    if (this.size === 1) out.set(input);
    else await this.within(ctx, ringReduceScatter(ctx, input, out, plan, op, opts.overwriteInput));
    return out;
  }

  /**
   * Sub-groups, as MPI_Comm_split and MLX: every rank of this group calls split in the same order;
   * ranks that give the same color form a group, ordered by (key, rank here); a null or negative
   * color joins none (null returned). A sub-group inherits this group's options, talks over this
   * group's transport in a tag region of its own (tag_space.ts), and may be used concurrently with
   * this group and with the groups of other splits. Its errors name the late rank in both numberings.
   */
  async split(color: number | null, key: number = this.rank, opts: SplitOptions = {}): Promise<ProcessGroup | null> {
    const entry = splitEntry(color, key);
    const index = this.splits++;
    const region = this.tags.splitRegion(index);
    if (!region) {
      const why = index >= MAX_SPLITS ? `a group splits at most ${MAX_SPLITS} times` : 'sub-groups nest at most three levels deep';
      throw new SmolError('TOO_MANY_SPLITS', `split #${index + 1} of this group of ${this.size}: ${why} (comm/tag_space.ts)`);
    }
    // Every rank's (color, key): an all-gather of float64 pairs.
    const table = new Float64Array(SPLIT_ENTRY_FLOATS * this.size);
    table.set(entry, this.rank * SPLIT_ENTRY_FLOATS);
    const ctx = this.context('split', opts);
    const plan = planCounts(new Array<number>(this.size).fill(8 * SPLIT_ENTRY_FLOATS), this.chunkBytes);
    if (this.size > 1) await this.within(ctx, ringAllGather(ctx, bytesOf(table), plan));
    const members = splitMembers(table, this.rank);
    if (!members) return null;
    const label = `sub-group '${opts.name ?? `split ${index} color ${entry[0]}`}'`;
    const groupOpts = opts.groupTimeoutMs === undefined ? this.opts : { ...this.opts, timeoutMs: opts.groupTimeoutMs };
    return new ProcessGroup(new GroupTransport(this.transport, members, members.indexOf(this.rank), region, label), groupOpts);
  }

  /** Resolves once every rank has entered the barrier. */
  async barrier(opts: CollectiveOptions = {}): Promise<void> {
    const ctx = this.context('barrier', opts);
    if (this.size > 1) await this.within(ctx, disseminationBarrier(ctx));
  }

  /** Sends `data` to rank `dst`; resolves once handed to the OS (then `data` may be reused). */
  send(data: ArrayBufferView, dst: number, opts: P2POptions = {}): Promise<void> {
    checkPeer(this, dst);
    return p2pSend(this.transport, dst, this.pairs.nextSendTag(dst, opts.tag ?? 0), bytesOf(data), { timeoutMs: opts.timeoutMs ?? this.timeoutMs, op: 'send' });
  }

  /** Receives the matching message from rank `src` into `data` (exact length). Returns `data`. */
  async recv<T extends ArrayBufferView>(data: T, src: number, opts: P2POptions = {}): Promise<T> {
    checkPeer(this, src);
    const tag = this.pairs.nextRecvTag(src, opts.tag ?? 0);
    await p2pRecv(this.transport, src, tag, bytesOf(data), { timeoutMs: opts.timeoutMs ?? this.timeoutMs, op: 'recv' });
    return data;
  }

  /**
   * The peer reconnected (its transport link was replaced, comm/hub.ts): point-to-point messages
   * with it are numbered from zero again, as the new process numbers them. Collectives are not
   * reset: a group with a replaced peer talks to it point to point only.
   */
  resetPeer(peer: number): void {
    checkPeer(this, peer);
    this.pairs.forget(peer);
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /**
   * By size and rank count (docs/ALGORITHMS.md has the measured crossovers): with more than two ranks,
   * recursive doubling (log2 n rounds) up to doublingMaxBytes — on the 2-core machine it beat both the
   * direct exchange and the ring from 4 KiB to 64 KiB at 4 ranks; then direct while it sends at most
   * directMaxBytes per rank (one round: at two ranks the same exchange as doubling); the ring beyond.
   * Every rank makes the same choice.
   */
  private chooseAllReduce(data: Float32Array, algorithm: AllReduceAlgorithm): Exclude<AllReduceAlgorithm, 'auto'> {
    if (algorithm === 'ring' || algorithm === 'direct' || algorithm === 'doubling') return algorithm;
    if (algorithm !== 'auto') throw new RangeError(`unknown all-reduce algorithm '${String(algorithm)}'`);
    if (this.size > 2 && data.byteLength <= this.doublingMaxBytes) return 'doubling';
    if ((this.size - 1) * data.byteLength <= this.directMaxBytes) return 'direct';
    return 'ring';
  }

  /** Takes the next sequence number now (synchronously), so concurrent calls stay ordered. */
  private context(op: string, opts: CollectiveOptions): OpContext {
    const seq = this.seq;
    this.seq = (this.seq + 1) % this.tags.seqLimit;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    return { transport: this.transport, rank: this.rank, size: this.size, seq, op, timeoutMs, deadline: new Deadline(op, timeoutMs), scratch: this.scratch, add: this.reducer };
  }

  /** Awaits an algorithm; its deadline's timer goes once it is over. */
  private async within(ctx: OpContext, work: Promise<void>): Promise<void> {
    try {
      await work;
    } finally {
      ctx.deadline.finish();
    }
  }

  private checkRoot(root: number): void {
    if (!Number.isInteger(root) || root < 0 || root >= this.size) {
      throw new SmolError('BAD_ROOT', `broadcast root ${root} is not a rank of this group (size ${this.size})`);
    }
  }
}
