import type { Tensor } from '../tensor/tensor.js';
import { canCopy, copyInto } from '../tensor/boundary/storage_copy.js';
import { adviseHugePages } from '../tensor/huge_page_block.js';
import { deviceMemory, type Device, type Storage } from '../tensor/storage.js';

export interface ArenaEntry {
  name: string;
  shape: readonly number[];
  offset: number;
  size: number;
  /** Whether weight decay applies (false for biases and normalisation parameters; see decay.ts). */
  decay: boolean;
}

/** A contiguous stretch of the arena whose parameters all decay, or all do not. */
export interface DecayRun {
  offset: number;
  size: number;
  decay: boolean;
}

/**
 * All parameters of a model in one contiguous float32 storage on their device, and all gradients in
 * another of the same layout. Each parameter tensor's storage and grad are rebound to views into
 * them (by offset), so optimizers, all-reduce, checkpoints and the wire work on two flat buffers (or
 * ranges of them) with no copies, whatever the model. Host code reaches the values through the
 * handles (`await params.read()`, a copy) or, to exchange them in place, through the device
 * boundary (src/train/boundary/: the cpu's flat Float32Array itself, zero-copy).
 */
export class ParamArena {
  private constructor(
    readonly params: Storage<Float32Array>,
    readonly grads: Storage<Float32Array>,
    readonly entries: readonly ArenaEntry[],
    /** The parameters pack() bound, each with the gradient view it was given (none for over()/slice()). */
    private readonly bound: readonly (readonly [Tensor, Storage])[] = [],
    /** Bytes of the parameters pack() advised for huge pages (tensor/huge_page_block.ts; 0 where the backend cannot, for over()/slice()). */
    readonly hugePageBytes = 0,
  ) {}

  /** The device the arena lives on (one parameter and one gradient storage per device). */
  get device(): Device {
    return this.params.device;
  }

  /**
   * `noDecay` names the parameters weight decay skips (default: none, torch's plain behaviour).
   * `device` (default: the first parameter's) is where the arena lives; parameters in host memory
   * are copied there (a model built on the host, then trained on a GPU), parameters on it by a kernel.
   */
  static pack(named: [string, Tensor][], noDecay: ReadonlySet<string> = new Set(), device: Device = named[0]?.[1].device ?? 'cpu'): ParamArena {
    const entries: ArenaEntry[] = [];
    let total = 0;
    for (const [name, p] of named) {
      if (p.dtype !== 'float32') throw new Error(`parameter ${name}: arenas hold float32 parameters only`);
      if (!canCopy(p.storage as Storage<Float32Array>, device)) throw new Error(`parameter ${name} is on ${p.device}, the arena's first parameter on ${device}: one arena per device`);
      entries.push({ name, shape: p.shape, offset: total, size: p.size, decay: !noDecay.has(name) });
      total += p.size;
    }
    const memory = deviceMemory(device);
    const data = memory.alloc('float32', total) as Storage<Float32Array>;
    const grad = memory.alloc('float32', total) as Storage<Float32Array>;
    // Every step streams the parameters (a decode step all of them, once per token): in 4 KB pages the
    // page walks cost the stream (GRPO's rollouts at batch 8 on the SmolLM2 shape: 6 % of a step). Not
    // the gradients: collapsed into huge pages, a model that never trains would hold them resident.
    const hugePageBytes = adviseHugePages(data);
    const bound = named.map(([, p], i) => {
      const { offset, size } = entries[i];
      copyInto(data, p.storage as Storage<Float32Array>, offset);
      // Keep a gradient computed before the arena was built (e.g. backward before arena()).
      if (p.grad) copyInto(grad, p.grad as Storage<Float32Array>, offset);
      const view = grad.view(offset, size);
      p.bind(data.view(offset, size), view);
      return [p, view] as const;
    });
    return new ParamArena(data, grad, entries, bound, hugePageBytes);
  }

  /**
   * An arena over storages someone else laid out (`entries` index into `params` and `grads`, of
   * equal size): a ZeRO rank's shard, with entries cut at the shard's edges (src/parallel/zero/).
   */
  static over(params: Storage<Float32Array>, grads: Storage<Float32Array>, entries: readonly ArenaEntry[]): ParamArena {
    if (params.size !== grads.size) throw new RangeError(`arena: ${params.size} parameters but ${grads.size} gradients`);
    const end = entries.reduce((n, e) => Math.max(n, e.offset + e.size), 0);
    if (end > params.size) throw new RangeError(`arena: entries reach ${end}, the storage holds ${params.size}`);
    return new ParamArena(params, grads, entries);
  }

  /**
   * The range [start, end) of the arena as an arena of its own: views of the same parameter and
   * gradient buffers, entries cut at the range's edges. An optimizer built over it keeps state for
   * that range only (a ZeRO shard, src/parallel/zero/).
   */
  slice(start: number, end: number): ParamArena {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= this.size)) {
      throw new RangeError(`arena slice [${start}, ${end}) is not inside the arena of ${this.size} parameters`);
    }
    const entries: ArenaEntry[] = [];
    for (const e of this.entries) {
      const from = Math.max(start, e.offset);
      const to = Math.min(end, e.offset + e.size);
      if (from < to) entries.push({ name: e.name, shape: e.shape, offset: from - start, size: to - from, decay: e.decay });
    }
    return new ParamArena(this.params.view(start, end - start), this.grads.view(start, end - start), entries);
  }

  /**
   * Zeroes every gradient, and tells each parameter still bound to its view here that its gradient
   * is zero (Tensor.markGradZeroed): the first backward op to reach it may then write it whole
   * (a GEMM with beta = 0, which oneDNN runs up to 25 % faster than beta = 1's sum) instead of
   * adding into zeros. A parameter rebound elsewhere since, or an arena over someone else's
   * layout (a ZeRO shard), is only zeroed.
   */
  zeroGrads(): void {
    this.grads.zero();
    for (const [p, view] of this.bound) if (p.grad === view) p.markGradZeroed();
  }

  /** The arena split into maximal runs of equal decay flag, in order (one run when all agree). */
  decayRuns(): DecayRun[] {
    const runs: DecayRun[] = [];
    for (const e of this.entries) {
      const last = runs[runs.length - 1];
      if (last && last.decay === e.decay && last.offset + last.size === e.offset) last.size += e.size;
      else runs.push({ offset: e.offset, size: e.size, decay: e.decay });
    }
    return runs;
  }

  get size(): number {
    return this.params.size;
  }

  /** FNV-1a over the parameter bytes (read with await, on any device): cheap to compare across ranks, sensitive to any bit. */
  async checksum(): Promise<string> {
    return checksumOf(await this.params.read());
  }

  /** A signature of the layout (names and shapes): two processes with equal signatures hold the same model. */
  signature(): string {
    return this.entries.map((e) => `${e.name}:${e.shape.join('x')}`).join(',');
  }
}

/** FNV-1a over float32 values' bytes (ParamArena.checksum; a GPU arena's parameters once read to the host). */
export function checksumOf(values: Float32Array): string {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}
