/**
 * A model's parameters and gradients as one rank of a ZeRO group keeps them. The flat arena layout
 * (every parameter at its offset, as ParamArena.pack lays it out) is cut by the shard plan; this
 * rank owns [start, end). The module's arena becomes the shard (Module.useArena), so the optimizer
 * the loop builds over it keeps state for the shard only, and the loop's zeroing and clipping and
 * the per-rank checkpoints see the shard.
 *
 *   stage 1: the full parameters and the full gradient arena; the optimizer state is the shard's.
 *   stage 2: the full parameters; a gradient exists per tensor only from backward until its bucket
 *            is reduce-scattered into the shard's gradient, then it is dropped.
 *   stage 3: only the shard of the parameters; a layer group's full parameters exist while it is
 *            gathered (a fresh window), and its tensors hold a ReleasedStorage otherwise.
 *
 * Collectives over ranges of the layout use the shard plan's overlap with the range as counts, so
 * rank r's segment of every reduce-scatter and all-gather is exactly its part of the range.
 *
 * On a GPU (`build(..., device)`) the shard, the full parameters (stages 1, 2), the gathered
 * windows (stage 3) and the gradients live on the device, and the optimizer steps the shard there.
 * Collectives reach the storages through the host boundary (tensor/boundary/host_values.ts): on the
 * cpu they run in place on the storages' own memory (no copy); on a GPU what they send is read
 * (awaited) and what they receive is installed. As a read may finish out of order, the
 * collectives go through the device boundary's facade (parallel/boundary/storage_collectives.ts),
 * which issues them in call order, so all ranks issue them in one order.
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import { type ArenaEntry, ParamArena, checksumOf } from '../../nn/arena.js';
import type { Module } from '../../nn/module.js';
import type { Optimizer } from '../../nn/optim/optimizer.js';
import { install, valuesToReceive, valuesToSend } from '../../tensor/boundary/host_values.js';
import { CPU, type Device, deviceMemory, type Storage } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { deferredValues, isDeferred } from '../../tensor/deferred_init.js';
import { ReleasedStorage } from './released.js';
import { StorageCollectives } from '../boundary/storage_collectives.js';
import { overlapCounts, planShards, type ShardPlan } from './shard_plan.js';
import { WindowPool } from './window_pool.js';

export type ZeroStage = 1 | 2 | 3;

/** Bytes of model state this rank holds, by what they are (measured from the storages' byteLength). */
export interface ModelStateBytes {
  params: number;
  grads: number;
  optimizer: number;
  total: number;
}

/** Where a rank's kept values of each parameter come from: elements [from, to) of parameter `name`. */
export type ParameterValues = (name: string, p: Tensor, from: number, to: number) => Float32Array | Promise<Float32Array>;

/** The model's own values: made from their recipes when it was built deferred, else read. */
export async function ownValues(_name: string, p: Tensor, from: number, to: number): Promise<Float32Array> {
  if (isDeferred(p.storage)) return deferredValues(p.storage, from, to);
  return ((await p.storage.read()) as Float32Array).subarray(from, to);
}

export class ShardedModel {
  /** The whole arena's layout (offsets into the full, never-materialised arena under stage 3). */
  readonly layout: readonly ArenaEntry[];
  readonly tensors: readonly Tensor[];
  readonly plan: ShardPlan;
  readonly range: readonly [number, number];
  /** This rank's shard: the module's arena. */
  readonly shard: ParamArena;
  private gathered = 0;
  /** The most floats of gathered parameters alive at once (stage 3's windows), measured as they are made. */
  peakGatheredFloats = 0;
  /** Stage 3: the gradient window of each gathered group (by its first entry) and the views its tensors were bound to. */
  private readonly gradWindows = new Map<number, { last: number; storage: Storage<Float32Array>; views: Storage[] }>();
  /** Stage 3: the parameter window of each gathered group (by its first entry). */
  private readonly paramWindows = new Map<number, Storage<Float32Array>>();
  /** Stage 3: windows nothing reads any more, for the next gathers. */
  private readonly pool: WindowPool;
  /** This model's collectives, issued in call order whatever order the device's reads finish in (the frozen shards' too). */
  readonly collectives: StorageCollectives;

  private constructor(
    readonly stage: ZeroStage,
    private readonly group: ProcessGroup,
    named: [string, Tensor][],
    layout: ArenaEntry[],
    /** Stages 1 and 2: every parameter, all-gathered after each update. */
    private readonly full: Storage<Float32Array> | null,
    /** Stage 1 only: the whole gradient arena. */
    private readonly fullGrads: Storage<Float32Array> | null,
    shardParams: Storage<Float32Array>,
    shardGrads: Storage<Float32Array>,
  ) {
    this.layout = layout;
    this.tensors = named.map(([, t]) => t);
    this.plan = planShards(layout.reduce((n, e) => n + e.size, 0), group.size);
    this.range = this.plan.ranges[group.rank];
    this.shard = ParamArena.over(shardParams, shardGrads, shardEntries(layout, this.range));
    this.collectives = new StorageCollectives(group);
    this.pool = new WindowPool(shardParams.device);
  }

  /**
   * Shards `model` for this rank and makes the module's arena the shard, allocated on `device` (the
   * model's buffers stay where they are: `model.to(device)` after moves them). The model comes from
   * the run's seed on every rank, built deferred (tensor/deferred_init.ts: its parameters are recipes, and
   * only the values this rank keeps are made) or whole; `values` may bring them from elsewhere (a
   * file read by ranges: --init). Under stage 3 its parameter storages are dropped here, and from
   * now on only the shard lives.
   */
  static async build(model: Module, group: ProcessGroup, stage: ZeroStage, device: Device = CPU, values: ParameterValues = ownValues): Promise<ShardedModel> {
    await holdFrozenWhole(model, device, values);
    const named = model.namedTrainable();
    const noDecay = model.noDecayNames();
    const layout: ArenaEntry[] = [];
    let total = 0;
    for (const [name, p] of named) {
      if (p.dtype !== 'float32') throw new Error(`ZeRO: parameter ${name} is ${p.dtype}; the arena holds float32 parameters`);
      layout.push({ name, shape: p.shape, offset: total, size: p.size, decay: !noDecay.has(name) });
      total += p.size;
    }
    const memory = deviceMemory(device);
    const alloc = (n: number): Storage<Float32Array> => memory.alloc('float32', n) as Storage<Float32Array>;
    // Stages 1 and 2 keep every parameter; stage 3 this rank's range only.
    const [start, end] = stage < 3 ? [0, total] : planShards(total, group.size).ranges[group.rank];
    const kept = alloc(end - start);
    for (const [i, [name, p]] of named.entries()) {
      const { offset, size } = layout[i];
      const from = Math.max(start, offset);
      const to = Math.min(end, offset + size);
      if (from < to) kept.write(await values(name, p, from - offset, to - offset), from - start);
      if (stage === 3) p.bind(new ReleasedStorage(size, name), null);
    }
    let sharded: ShardedModel;
    if (stage < 3) {
      const fullGrads = stage === 1 ? alloc(total) : null;
      named.forEach(([, p], i) => p.bind(kept.view(layout[i].offset, layout[i].size), fullGrads ? fullGrads.view(layout[i].offset, layout[i].size) : null));
      const [a, b] = planShards(total, group.size).ranges[group.rank];
      sharded = new ShardedModel(stage, group, named, layout, kept, fullGrads, kept.view(a, b - a), fullGrads ? fullGrads.view(a, b - a) : alloc(b - a));
    } else {
      sharded = new ShardedModel(stage, group, named, layout, null, null, kept, alloc(end - start));
    }
    model.useArena(sharded.shard);
    return sharded;
  }

  /** Stages 1 and 2: every rank's updated shard into every rank's full parameters. */
  async allGatherParams(): Promise<void> {
    const full = this.full;
    if (!full) throw new Error(`ZeRO-${this.stage}: no full parameters to gather into`);
    // On the cpu the shard is a range of `full`'s own memory: the all-gather runs in place.
    await this.collectives.allGather(this.shard.params, full, { counts: this.plan.counts });
  }

  /**
   * Sums every rank's gradient of the layout range [start, end) (`input`, that range's floats) and
   * leaves this rank's part in the shard's gradient: written over it (stage 1: the reduced sum
   * replaces the local gradient), or added to it (stages 2 and 3: micro-batches accumulate there).
   * A `disposable` input (takeGradients' window or copy) holds the partial sums: no scratch.
   */
  async reduceScatter(start: number, end: number, input: Float32Array | Promise<Float32Array>, accumulate: boolean, disposable = false): Promise<void> {
    const counts = overlapCounts(this.plan, start, end);
    const mine = new Float32Array(counts[this.group.rank]);
    await this.collectives.inOrder([input], ([values]) => this.group.reduceScatter(values, mine, { op: 'sum', counts, overwriteInput: disposable }));
    if (mine.length === 0) return;
    const at = Math.max(start, this.range[0]) - this.range[0];
    const target = this.shard.grads.view(at, mine.length);
    // Each range of the shard has one reduce-scatter in flight at a time, so a device's read-add-write does not race.
    // On the cpu `grads` is the shard's own memory (added into in place); on a device, a copy written back.
    const grads = accumulate ? await valuesToSend(target) : valuesToReceive(target);
    if (accumulate) for (let i = 0; i < mine.length; i++) grads[i] += mine[i];
    else grads.set(mine);
    install(target, grads);
  }

  /** Stage 1: zeroes the whole gradient arena (the loop zeroes the module's arena, which is the shard). */
  zeroFullGradients(): void {
    this.fullGrads?.zero();
  }

  /** Stage 1: the full gradient arena's range [start, end) to send (on the cpu in place, no copy; a device's read). */
  fullGradients(start: number, end: number): Float32Array | Promise<Float32Array> {
    if (!this.fullGrads) throw new Error(`ZeRO-${this.stage}: gradients are not kept whole`);
    return valuesToSend(this.fullGrads.view(start, end - start));
  }

  /**
   * Stages 2 and 3: the gradients of entries `first..last` (a contiguous layout range) packed into
   * one buffer, and dropped from their tensors (the buffer is the only copy until it is reduced).
   * On a device the reads start now and `values` resolves once they are all on the host.
   */
  takeGradients(first: number, last: number): { start: number; end: number; values: Float32Array | Promise<Float32Array> } {
    const start = this.layout[first].offset;
    const end = this.layout[last].offset + this.layout[last].size;
    const flat = this.takeGradientWindow(first, last);
    if (flat) return { start, end, values: flat };
    const values = new Float32Array(end - start);
    const reads: Promise<void>[] = [];
    for (let i = first; i <= last; i++) {
      const t = this.tensors[i];
      const at = this.layout[i].offset - start;
      const grad = t.grad ? valuesToSend(t.grad as Storage<Float32Array>) : null;
      if (grad instanceof Float32Array) values.set(grad, at);
      else if (grad) reads.push(grad.then((g) => values.set(g, at)));
      t.grad = null;
    }
    return { start, end, values: reads.length > 0 ? Promise.all(reads).then(() => values) : values };
  }

  /**
   * Stage 3: the gradient window gather() bound to entries `first..last`, when backward wrote into
   * it (every tensor's gradient still one of its views): the group's gradient, contiguous already,
   * with no copy on the cpu. The tensors' gradients are unbound.
   */
  private takeGradientWindow(first: number, last: number): Float32Array | Promise<Float32Array> | null {
    const w = this.gradWindows.get(first);
    this.gradWindows.delete(first);
    if (!w || w.last !== last || w.views.some((v, k) => this.tensors[first + k].grad !== v)) return null;
    for (let i = first; i <= last; i++) this.tensors[i].grad = null;
    return valuesToSend(w.storage);
  }

  /**
   * Stage 3: all-gathers the layout range of entries `first..last` into a fresh window and binds
   * their tensors to it. `withGradients` (training): their gradients to views of one zeroed window
   * too, which backward writes in place (FSDP's flat gradient), so the group's gradient leaves
   * without being packed; otherwise unbound. Returns the window's floats.
   */
  async gather(first: number, last: number, withGradients = false): Promise<number> {
    const start = this.layout[first].offset;
    const end = this.layout[last].offset + this.layout[last].size;
    const counts = overlapCounts(this.plan, start, end);
    // Every float of the window is gathered over: a spare one needs no zeroing.
    const window = this.pool.take(end - start, false);
    this.paramWindows.set(first, window);
    this.gathered += end - start;
    this.peakGatheredFloats = Math.max(this.peakGatheredFloats, this.gathered);
    const from = Math.max(start, this.range[0]) - this.range[0];
    const own = counts[this.group.rank] > 0 ? this.shard.params.view(from, counts[this.group.rank]) : null;
    // The gathered parameters reach the device before the window is bound: the group's forward reads them there.
    const all = valuesToReceive(window);
    await this.collectives.inOrder([own ? valuesToSend(own) : new Float32Array(0)], ([mine]) => this.group.allGather(mine, all, { counts }));
    install(window, all);
    const grads = withGradients ? this.pool.take(end - start, true) : null;
    const views: Storage[] = [];
    for (let i = first; i <= last; i++) {
      const e = this.layout[i];
      const t = this.tensors[i];
      const grad = grads ? grads.view(e.offset - start, e.size) : t.grad;
      t.bind(window.view(e.offset - start, e.size), grad);
      if (grads) {
        views.push(grad!);
        // Zeroed and never handed out: backward may write it whole rather than add into it.
        t.markGradZeroed();
      }
    }
    if (grads) this.gradWindows.set(first, { last, storage: grads, views });
    return end - start;
  }

  /**
   * Stage 3: drops entries `first..last`'s gathered parameters from their tensors. Returns their
   * window, which a graph built while they were bound may still read (ops keep their operands'
   * buffers): hand it to `recycle` once nothing does.
   */
  release(first: number, last: number): Storage<Float32Array> | undefined {
    for (let i = first; i <= last; i++) {
      const t = this.tensors[i];
      t.bind(new ReleasedStorage(t.size, this.layout[i].name), t.grad);
    }
    this.gathered -= this.layout[last].offset + this.layout[last].size - this.layout[first].offset;
    const window = this.paramWindows.get(first);
    this.paramWindows.delete(first);
    return window;
  }

  /** Stage 3: a parameter window nothing reads any more (an evaluation's), reused by a later gather. */
  recycle(window: Storage<Float32Array>): void {
    this.pool.give(window);
  }

  /**
   * The whole model's parameters on `root` (stage 3: the shards sent there, one message each; stages
   * 1 and 2: already whole), bound to the module's tensors, and the module's arena made whole, so
   * the leader can evaluate and save it. Other ranks only send. Training cannot continue afterwards
   * under stage 3 (the tensors hold the whole model, the shard is unchanged): call it at the end.
   */
  async gatherTo(model: Module, root: number): Promise<void> {
    const rank = this.group.rank;
    let params = this.full;
    if (!params) {
      const shard = await valuesToSend(this.shard.params);
      if (rank !== root) {
        await this.group.send(shard, root);
        return;
      }
      params = deviceMemory(this.shard.device).alloc('float32', this.plan.total) as Storage<Float32Array>;
      const all = valuesToReceive(params);
      for (let r = 0; r < this.group.size; r++) {
        const [a, b] = this.plan.ranges[r];
        if (r === rank) all.set(shard, a);
        else await this.group.recv(all.subarray(a, b), r);
      }
      install(params, all);
      this.layout.forEach((e, i) => this.tensors[i].bind(params!.view(e.offset, e.size), null));
    }
    if (rank !== root) return;
    // Zeroed pages that are never written take no memory: the whole arena's gradient is a formality here.
    const grads = this.fullGrads ?? (deviceMemory(this.shard.device).alloc('float32', this.plan.total) as Storage<Float32Array>);
    model.useArena(ParamArena.over(params, grads, this.layout));
  }

  /** Undoes gatherTo after a mid-run evaluation: the module's arena is the shard again, and under stage 3 its tensors are released. */
  reshard(model: Module): void {
    if (!this.full && model.arena() !== this.shard) this.layout.forEach((e, i) => this.tensors[i].bind(new ReleasedStorage(e.size, e.name), null));
    model.useArena(this.shard);
  }

  /** FNV-1a over the full parameters (stages 1, 2): equal on every rank, on any device, after each all-gather. */
  async checksum(): Promise<string> {
    if (!this.full) throw new Error('ZeRO-3: no rank holds the full parameters');
    return checksumOf(await valuesToSend(this.full));
  }

  /** What this rank holds persistently: parameters, gradients and the optimizer's state, in bytes. */
  stateBytes(optimizer: Optimizer): ModelStateBytes {
    const params = (this.full ?? this.shard.params).byteLength;
    const grads = (this.fullGrads ?? this.shard.grads).byteLength;
    const state = optimizer.stateStorages().reduce((n, b) => n + b.byteLength, 0);
    return { params, grads, optimizer: state, total: params + grads + state };
  }
}

/**
 * Frozen parameters (LoRA's base, --freeze's) have no gradient and no optimizer state to shard:
 * every rank holds them whole on `device`, made from `values`, outside the arena; they are
 * neither reduced nor gathered (ZeRO-3's forward reads them where they are).
 */
async function holdFrozenWhole(model: Module, device: Device, values: ParameterValues): Promise<void> {
  for (const [name, p] of model.namedParameters()) {
    // Frozen parameters ZeRO-3 shards (frozen_shards.ts) hold a released storage already.
    if (p.requiresGrad || p.storage instanceof ReleasedStorage) continue;
    const whole = deviceMemory(device).alloc(p.dtype, p.size);
    whole.write(await values(name, p, 0, p.size));
    p.bind(whole, null);
  }
}

/** The layout cut at the shard's edges, offsets from its start; a parameter cut in two is a flat piece. */
function shardEntries(layout: readonly ArenaEntry[], [start, end]: readonly [number, number]): ArenaEntry[] {
  const out: ArenaEntry[] = [];
  for (const e of layout) {
    const from = Math.max(start, e.offset);
    const to = Math.min(end, e.offset + e.size);
    if (from >= to) continue;
    const whole = from === e.offset && to === e.offset + e.size;
    out.push({ name: e.name, shape: whole ? e.shape : [to - from], offset: from - start, size: to - from, decay: e.decay });
  }
  return out;
}
