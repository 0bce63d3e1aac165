/// <reference types="@webgpu/types" />
/**
 * A caching allocator for the GPU buffers of storages, in the manner of PyTorch's CUDA caching
 * allocator: a freed buffer goes to a free list of its size class and the next request of that
 * class takes it, instead of a createBuffer and a destroy per tensor (each a call into the driver,
 * and the memory zeroed anew). Everything runs in the stream's order, so a buffer freed while
 * recorded work still reads it can be handed out at once: its next user's clear and writes are
 * recorded after that work. What the cache holds is capped (`maxCachedBytes`: a buffer freed into
 * a full cache is destroyed), and `emptyCache()` gives every cached buffer back to the driver.
 *
 * A storage is freed explicitly (Storage.dispose, autograd giving back an intermediate gradient,
 * a kernel's scratch buffer once recorded) or, failing that, when the garbage collector has
 * dropped every storage and view of it: each allocation has a lease object that all of them hold,
 * and a FinalizationRegistry returns the buffer once the lease is collected.
 */

export interface GpuMemoryStats {
  /** Bytes of the buffers handed out and not freed (size classes, not the sizes asked for). */
  allocatedBytes: number;
  /** The most allocatedBytes has been. */
  peakAllocatedBytes: number;
  /** Bytes of free buffers held for reuse. */
  cachedBytes: number;
  /** Bytes of every buffer this allocator holds from the device: allocated + cached. */
  reservedBytes: number;
  /** Requests served from the cache. */
  hits: number;
  /** Requests that created a buffer. */
  misses: number;
  /** Buffers freed into a full cache, destroyed instead. */
  evictions: number;
  /** Buffers freed by the garbage collector (their lease collected) rather than explicitly. */
  collected: number;
}

/** One allocation: the buffer and whether it was freed (a lease is freed once, whichever way comes first). */
interface Held {
  readonly gpu: GPUBuffer;
  freed: boolean;
  collected?: boolean;
}

const USAGE = (): number => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** The default cap on cached bytes: 1 GiB. */
export const DEFAULT_MAX_CACHED_BYTES = 1 << 30;

/**
 * The size class of a request: a multiple of 256 bytes up to 1 KiB, then four classes per power
 * of two (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k), so a buffer is at most 25 % larger than asked and
 * tensors of nearby sizes share buffers. Every class is a whole number of vec4s (KernelSpec.vec4).
 */
export function sizeClass(bytes: number): number {
  if (bytes <= 1024) return Math.max(256, Math.ceil(bytes / 256) * 256);
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

export class GpuCachingAllocator {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** The largest buffer a request may take: the device's maxBufferSize (tests lower it). */
  maxBufferBytes: number;
  private readonly leases = new WeakMap<object, Held>();
  private readonly registry: FinalizationRegistry<Held>;
  private readonly counts: GpuMemoryStats = {
    allocatedBytes: 0, peakAllocatedBytes: 0, cachedBytes: 0, reservedBytes: 0, hits: 0, misses: 0, evictions: 0, collected: 0,
  };

  /**
   * `destroyLater` destroys a buffer once the work recorded so far is submitted (GpuStream.release):
   * a buffer leaving the cache may still be named by unsubmitted commands.
   */
  constructor(
    private readonly device: GPUDevice,
    private readonly destroyLater: (buf: GPUBuffer) => void,
    /** The most bytes the free lists hold; 0 turns caching off (every free destroys). */
    public maxCachedBytes = DEFAULT_MAX_CACHED_BYTES,
  ) {
    this.maxBufferBytes = device.limits.maxBufferSize;
    this.registry = new FinalizationRegistry((held) => {
      held.collected = true;
      this.giveBack(held);
    });
  }

  /**
   * A buffer of at least `bytes` and the lease its storages and views hold. `fresh` tells whether
   * it was just created (zeroed by the device) or came from the cache (old contents: the caller
   * clears it if it needs zeros).
   */
  acquire(bytes: number): { gpu: GPUBuffer; lease: object; fresh: boolean } {
    if (bytes > this.maxBufferBytes) {
      throw new Error(`webgpu: a storage of ${bytes} bytes (${bytes / 4} float32) is larger than one GPU buffer may be on this device (maxBufferSize ${this.maxBufferBytes} bytes)`);
    }
    // Near the limit the size class may not fit where the request does: the request's own size then.
    const size = Math.min(sizeClass(bytes), Math.max(this.maxBufferBytes - (this.maxBufferBytes % 16), Math.ceil(bytes / 4) * 4));
    let gpu = this.free.get(size)?.pop();
    const fresh = gpu === undefined;
    const c = this.counts;
    if (gpu) {
      c.hits++;
      c.cachedBytes -= size;
    } else {
      c.misses++;
      gpu = this.device.createBuffer({ size, usage: USAGE() });
      c.reservedBytes += size;
    }
    c.allocatedBytes += size;
    c.peakAllocatedBytes = Math.max(c.peakAllocatedBytes, c.allocatedBytes);
    const lease = {};
    const held: Held = { gpu, freed: false };
    this.leases.set(lease, held);
    this.registry.register(lease, held, lease);
    return { gpu, lease, fresh };
  }

  /** Frees the allocation of `lease` now (once: later frees, and the collector's, do nothing). */
  release(lease: object): void {
    const held = this.leases.get(lease);
    if (!held) return;
    this.registry.unregister(lease);
    this.giveBack(held);
  }

  /** Destroys every cached buffer (after the recorded work is submitted); handed-out buffers stay. */
  emptyCache(): void {
    for (const list of this.free.values()) for (const b of list) this.destroyLater(b);
    this.counts.reservedBytes -= this.counts.cachedBytes;
    this.counts.cachedBytes = 0;
    this.free.clear();
  }

  stats(): GpuMemoryStats {
    return { ...this.counts };
  }

  private giveBack(held: Held): void {
    if (held.freed) return;
    held.freed = true;
    const c = this.counts;
    const size = held.gpu.size;
    c.allocatedBytes -= size;
    if (held.collected) c.collected++;
    if (c.cachedBytes + size > this.maxCachedBytes) {
      c.evictions++;
      c.reservedBytes -= size;
      this.destroyLater(held.gpu);
      return;
    }
    c.cachedBytes += size;
    const list = this.free.get(size);
    if (list) list.push(held.gpu);
    else this.free.set(size, [held.gpu]);
  }
}
