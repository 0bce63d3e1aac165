/**
 * Storages carved in order out of blocks of memory backed by huge pages (2 MB) where the device's
 * backend can advise them (backend.ts HugePages: the native backend on Linux): for long-lived
 * weights a decode step streams (generate/weight_pages.ts, generate/model_casts.ts). A block is
 * advised when made (and collapsed where the kernel can), so what is written into it lands in huge
 * pages; a storage that does not fit the current block starts a new one.
 */
import { backendFor } from './dispatch.js';
import { type DType, type Device, type Storage, deviceMemory } from './storage.js';

export class HugePageBlocks {
  private block: Storage | null = null;
  private used = 0;

  private constructor(
    private readonly device: Device,
    private readonly dtype: DType,
    private readonly advise: (buffer: Storage['buffer']) => number,
  ) {}

  /** Blocks on `device`, or null where its backend cannot advise huge pages. */
  static on(device: Device, dtype: DType): HugePageBlocks | null {
    const advise = backendFor({ device, dtype: 'float32' }).adviseHugePages;
    return advise ? new HugePageBlocks(device, dtype, advise) : null;
  }

  /** A storage of n elements; a new block of `blockSize` elements (at least n) when the current one is full. */
  take(n: number, blockSize: number): Storage {
    if (this.block === null || this.used + n > this.block.size) {
      this.block = deviceMemory(this.device).alloc(this.dtype, Math.max(n, blockSize));
      this.advise(this.block.buffer);
      this.used = 0;
    }
    const s = this.block.view(this.used, n);
    this.used += n;
    return s;
  }
}
