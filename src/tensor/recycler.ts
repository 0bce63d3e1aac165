import { deviceMemory, type DType, type Device, type Storage } from './storage.js';

/**
 * Storages by device, dtype and size in nested maps, so a lookup builds no key string: a decode
 * step takes hundreds of buffers, and `device/dtype/size` keys (built, hashed and compared each
 * time) were 3-4 % of a quantized SmolLM2-135M decode step's time (profiled, one thread).
 */
class Shelves {
  private readonly byDevice = new Map<Device, Map<DType, Map<number, Storage[]>>>();

  put(buf: Storage): void {
    let byDtype = this.byDevice.get(buf.device);
    if (!byDtype) this.byDevice.set(buf.device, (byDtype = new Map()));
    let bySize = byDtype.get(buf.dtype);
    if (!bySize) byDtype.set(buf.dtype, (bySize = new Map()));
    const list = bySize.get(buf.size);
    if (list) list.push(buf);
    else bySize.set(buf.size, [buf]);
  }

  take(device: Device, dtype: DType, n: number): Storage | undefined {
    return this.byDevice.get(device)?.get(dtype)?.get(n)?.pop();
  }
}

/**
 * Buffer reuse for a loop that builds the same graph again and again (full-batch epochs over one
 * shard), per device: inside `recycler.run(fn)`, every buffer the engine allocates (op outputs, intermediate
 * gradients) is one of the buffers the previous run used, zeroed, instead of a fresh one. A fresh
 * typed array of a few hundred KB costs a page-faulting calloc and garbage-collector work each
 * time; a zeroed reused one gives the same numbers.
 *
 * The caller's promise: nothing created inside one run is read once the next run has started.
 * Leaf gradients (parameters') accumulate across runs, so they never come from a recycler.
 */
export class BufferRecycler {
  /** Buffers handed out by the current (or last) run. */
  private used = new Set<Storage>();
  /** Those of them not given back. */
  private lent = new Set<Storage>();
  /** Buffers of the previous run, free for the current one. */
  private free = new Shelves();

  /** Bytes of the buffers the current (or last) run took: its footprint, as nothing it took is freed before the next run. */
  get bytesTaken(): number {
    let n = 0;
    for (const b of this.used) n += b.byteLength;
    return n;
  }

  /** Bytes of the buffers lent now and not given back: what the run holds at this point. */
  get bytesLent(): number {
    let n = 0;
    for (const b of this.lent) n += b.byteLength;
    return n;
  }

  /** Runs fn with this recycler serving the engine's allocations (after reclaiming the last run's). */
  run<T>(fn: () => T): T {
    this.reclaim();
    return this.resume(fn);
  }

  /**
   * Runs fn inside the current run again, reclaiming nothing: for a run split by an await (a loss
   * read before its backward or its scoring), whose second part still reads the first part's
   * buffers. The caller's promise holds across the await: nothing else runs this recycler meanwhile.
   */
  resume<T>(fn: () => T): T {
    const outer = active;
    active = this;
    try {
      return fn();
    } finally {
      active = outer;
    }
  }

  /**
   * A buffer of n elements, the previous run's when it had one of this kind: zeroed, or with
   * `zeroed` false left as it was, for a caller that overwrites every element (allocUninit).
   */
  take(device: Device, dtype: DType, n: number, zeroed = true): Storage {
    const spare = this.free.take(device, dtype, n);
    if (spare && zeroed) spare.zero();
    const buf = spare ?? deviceMemory(device).alloc(dtype, n);
    this.used.add(buf);
    this.lent.add(buf);
    return buf;
  }

  /**
   * A buffer this run lent that nothing will read or write again (autograd's intermediate gradients
   * once propagated): free for the rest of this run, so a step's peak is not all its gradients at
   * once. False if this recycler did not lend it.
   */
  giveBack(buf: Storage): boolean {
    if (!this.lent.delete(buf)) return false;
    this.free.put(buf);
    return true;
  }

  /**
   * A buffer this run lent that must outlive the run (a layer's output, which the next layer reads:
   * layer_recycling.ts): the recycler forgets it, and the garbage collector frees it as any other.
   * False if this recycler did not lend it.
   */
  disown(buf: Storage): boolean {
    if (!this.lent.delete(buf)) return false;
    this.used.delete(buf);
    return true;
  }

  /**
   * A buffer this recycler disowned that nothing reads any more (a layer's output once the next
   * layer has run: layer_recycling.ts): the next run may lend it again.
   */
  adopt(buf: Storage): void {
    this.used.add(buf);
  }

  /** Everything lent so far becomes free; what the last run did not take again is dropped (memory stays one run's worth). */
  private reclaim(): void {
    const free = new Shelves();
    for (const b of this.used) free.put(b);
    this.free = free;
    this.used = new Set();
    this.lent = new Set();
  }
}

let active: BufferRecycler | null = null;

/** The recycler serving allocations right now (inside a `run`), if any. */
export function activeRecycler(): BufferRecycler | null {
  return active;
}

/**
 * Runs fn with no recycler serving its allocations, inside a run or not: what fn makes outlives the
 * run (a model's bf16 weight cast made at its first use, held for the model's life).
 */
export function outsideRecycler<T>(fn: () => T): T {
  const outer = active;
  active = null;
  try {
    return fn();
  } finally {
    active = outer;
  }
}
