/**
 * ZeRO-3's frozen parameters (LoRA's base, --freeze's), sharded like the trained ones: a second
 * flat layout of just the frozen tensors, cut by the same shard plan, so a base too big for one
 * rank is held 1/N per rank (DeepSpeed ZeRO-3 with LoRA). A layer group's frozen part is gathered
 * with its trained part, for the forward and for backward's dX, and dropped after; it is never
 * reduced and has no gradient or optimizer state.
 *
 * Held in float32, or in bfloat16 (`--lora-base-dtype bf16`: the adapted weights' shards are bf16,
 * half the bytes). The collectives move 32-bit words: a bf16 tensor is padded to an even length,
 * so every tensor starts on a word and two bf16 values travel as one float32's bits (the gather
 * copies bits, it never computes on them).
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import type { Module } from '../../nn/module.js';
import { mappedMemory } from '../../tensor/boundary/host_values.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { type Device, deviceMemory, type HostArray, type Storage } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { StorageCollectives } from '../boundary/storage_collectives.js';
import { ReleasedStorage } from './released.js';
import type { ParameterValues } from './sharded_model.js';
import { overlapCounts, planShards, type ShardPlan } from './shard_plan.js';

export type FrozenDType = 'float32' | 'bfloat16';

/** One frozen tensor in the frozen layout: elements [offset, offset + size), its slot padded to a whole word. */
export interface FrozenEntry {
  name: string;
  shape: readonly number[];
  offset: number;
  size: number;
}

export class FrozenShards {
  readonly layout: readonly FrozenEntry[];
  readonly plan: ShardPlan;
  /** Elements per 32-bit word: 1 (float32) or 2 (bfloat16). */
  private readonly perWord: number;
  /** Gathered on the root by gatherTo (for --save), until reshard. */
  private whole = false;
  /** Set once the trained shards' facade exists: one call order for every collective of the model. */
  collectives: StorageCollectives | null = null;

  private constructor(
    private readonly group: ProcessGroup,
    readonly dtype: FrozenDType,
    private readonly tensors: readonly Tensor[],
    layout: FrozenEntry[],
    /** This rank's words of the layout, as `dtype` elements. */
    readonly shard: Storage,
    private readonly device: Device,
  ) {
    this.layout = layout;
    this.perWord = dtype === 'bfloat16' ? 2 : 1;
    const words = layout.length === 0 ? 0 : (layout[layout.length - 1].offset + slot(layout[layout.length - 1].size, this.perWord)) / this.perWord;
    this.plan = planShards(words, group.size);
  }

  /**
   * Shards the frozen parameters `pick` chooses (in the model's order) for this rank, held as
   * `dtype` on `device`, their values from `values` (this rank's range only: a deferred build makes
   * no more); their tensors hold a released storage of `dtype` from now on.
   */
  static async build(model: Module, group: ProcessGroup, device: Device, values: ParameterValues, dtype: FrozenDType, pick: (name: string) => boolean): Promise<FrozenShards> {
    const named = model.namedParameters().filter(([name, p]) => !p.requiresGrad && pick(name));
    const perWord = dtype === 'bfloat16' ? 2 : 1;
    const layout: FrozenEntry[] = [];
    let total = 0;
    for (const [name, p] of named) {
      if (p.dtype !== 'float32') throw new Error(`ZeRO-3: frozen parameter ${name} is ${p.dtype}; its shards are made from float32 values`);
      layout.push({ name, shape: p.shape, offset: total, size: p.size });
      total += slot(p.size, perWord);
    }
    const [a, b] = planShards(total / perWord, group.size).ranges[group.rank];
    const [start, end] = [a * perWord, b * perWord];
    const kept = new Float32Array(end - start);
    for (const [i, [name, p]] of named.entries()) {
      const { offset, size } = layout[i];
      const from = Math.max(start, offset);
      const to = Math.min(end, offset + size);
      if (from < to) kept.set(await values(name, p, from - offset, to - offset), from - start);
      p.storage = new ReleasedStorage(p.size, name, dtype, device);
      p.grad = null;
    }
    const shard = held(kept, dtype, device);
    return new FrozenShards(group, dtype, named.map(([, t]) => t), layout, shard, device);
  }

  /** Whether `t` is one of the tensors sharded here. */
  holds(t: Tensor): boolean {
    return this.tensors.includes(t);
  }

  /** Whether this holds no parameter (nothing to gather). */
  get empty(): boolean {
    return this.layout.length === 0;
  }

  /** All-gathers entries `first..last` into a fresh window and binds their tensors to it; returns the window's elements. */
  async gather(first: number, last: number): Promise<number> {
    const [ws, we] = this.words(first, last);
    const counts = overlapCounts(this.plan, ws, we);
    const window = deviceMemory(this.device).alloc(this.dtype, (we - ws) * this.perWord);
    const mineCount = counts[this.group.rank];
    const from = Math.max(ws, this.plan.ranges[this.group.rank][0]) - this.plan.ranges[this.group.rank][0];
    const own = mineCount > 0 ? this.wordsToSend(this.shard.view(from * this.perWord, mineCount * this.perWord)) : new Float32Array(0);
    const mapped = mappedMemory(window);
    const all = mapped ? asWords(mapped) : new Float32Array(we - ws);
    const issue = ([mine]: Float32Array[]): Promise<unknown> => this.group.allGather(mine, all, { counts });
    if (this.collectives) await this.collectives.inOrder([own], issue);
    else await issue([await own]);
    if (!mapped) window.write(this.dtype === 'bfloat16' ? new Uint16Array(all.buffer) : all);
    for (let i = first; i <= last; i++) {
      const e = this.layout[i];
      this.tensors[i].bind(window.view(e.offset - ws * this.perWord, e.size), null);
    }
    return (we - ws) * this.perWord;
  }

  /** Drops entries `first..last`'s gathered values (their window is freed with the last reference). */
  release(first: number, last: number): void {
    for (let i = first; i <= last; i++) this.tensors[i].bind(new ReleasedStorage(this.layout[i].size, this.layout[i].name, this.dtype, this.device), null);
  }

  /** The whole frozen layout on `root` (every rank's shard sent there, one message each), bound to its tensors: for --save at the end. */
  async gatherTo(root: number): Promise<void> {
    if (this.empty) return;
    const shard = await this.wordsToSend(this.shard);
    if (this.group.rank !== root) {
      await this.group.send(shard, root);
      return;
    }
    const all = new Float32Array(this.plan.total);
    for (let r = 0; r < this.group.size; r++) {
      const [a, b] = this.plan.ranges[r];
      if (r === root) all.set(shard, a);
      else await this.group.recv(all.subarray(a, b), r);
    }
    const whole = deviceMemory(this.device).alloc(this.dtype, this.plan.total * this.perWord);
    whole.write(this.dtype === 'bfloat16' ? new Uint16Array(all.buffer) : all);
    this.layout.forEach((e, i) => this.tensors[i].bind(whole.view(e.offset, e.size), null));
    this.whole = true;
  }

  /** Undoes gatherTo: the root's frozen tensors released again. */
  reshard(): void {
    if (this.whole) this.release(0, this.layout.length - 1);
    this.whole = false;
  }

  /** Bytes of frozen values this rank keeps between gathers. */
  get shardBytes(): number {
    return this.shard.byteLength;
  }

  /** The word range [start, end) of entries `first..last`. */
  private words(first: number, last: number): [number, number] {
    const end = this.layout[last].offset + slot(this.layout[last].size, this.perWord);
    return [this.layout[first].offset / this.perWord, end / this.perWord];
  }

  /** A storage's values as 32-bit words to send: its own memory on the cpu, a read copy on a device. */
  private wordsToSend(storage: Storage): Float32Array | Promise<Float32Array> {
    const mapped = mappedMemory(storage);
    return mapped ? asWords(mapped) : storage.read().then(asWords);
  }
}

/** A tensor's slot in the layout: its size padded to whole 32-bit words. */
function slot(size: number, perWord: number): number {
  return Math.ceil(size / perWord) * perWord;
}

/** float32 values as `dtype` on `device` (bfloat16: rounded by the device's own cast, as holdBaseInBf16 rounds). */
function held(values: Float32Array, dtype: FrozenDType, device: Device): Storage {
  const memory = deviceMemory(device);
  const f32 = memory.alloc('float32', values.length);
  f32.write(values);
  if (dtype === 'float32') return f32;
  const bf16 = memory.alloc('bfloat16', values.length);
  if (values.length > 0) kernelsFor(f32).toBf16(f32.buffer, bf16.buffer);
  f32.dispose();
  return bf16;
}

/** Host values as 32-bit words (bfloat16 pairs reinterpreted; the length is even by the layout's padding). */
function asWords(values: HostArray): Float32Array {
  if (values instanceof Float32Array) return values;
  return new Float32Array(values.buffer, values.byteOffset, (values.length * values.BYTES_PER_ELEMENT) / 4);
}
