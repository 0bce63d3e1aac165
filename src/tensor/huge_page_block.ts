/**
 * Storages carved in order out of blocks of memory backed by huge pages (2 MB) where the device's
 * backend can advise them (backend.ts HugePages: the native backend on Linux): for long-lived
 * weights a decode step streams (generate/weight_pages.ts, generate/model_casts.ts). A block is
 * advised when made (and collapsed where the kernel can), so what is written into it lands in huge
 * pages; a storage that does not fit the current block starts a new one.
 */
import { backendFor } from './dispatch.js';
import { type DType, type Device, type Storage, deviceMemory } from './storage.js';

/**
 * Advises huge pages for `storage` in place where its device's backend can (the 2 MB-aligned span
 * inside it, collapsed where the kernel can; its values kept): for a long-lived buffer a decode step
 * streams, such as a model's parameter arena (nn/arena.ts). Returns the bytes advised (0 elsewhere).
 */
export function adviseHugePages(storage: Storage): number {
  const advise = backendFor({ device: storage.device, dtype: 'float32' }).adviseHugePages;
  return advise ? advise(storage.buffer) : 0;
}

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

/**
 * Bytes carved in order out of one block backed by huge pages where the device's backend can
 * advise them: quantized weights of several formats (their blocks are bytes), read straight into
 * their places (nn/interchange/gguf_llama.ts for a generator). A decode step streams them all:
 * SmolLM2-135M's Q8_0 file decoded at 16.2–16.8 ms a token from huge pages, 18.7–18.9 from the
 * file's mapped pages (Q4_0: 12.4–12.8 against 13.4–13.7; one thread, an Intel Xeon, alternating
 * runs). Each place starts on a 64-byte line.
 */
export class HugePageBytes {
  private used = 0;

  private constructor(private readonly bytes: Uint8Array) {}

  /** Bytes a place of n takes in the block (n rounded up to whole 64-byte lines). */
  static span(n: number): number {
    return Math.ceil(n / 64) * 64;
  }

  /** A block of `total` bytes (the sum of its places' spans) on `device`, or null where its backend cannot advise huge pages or the host cannot address it. */
  static on(device: Device, total: number): HugePageBytes | null {
    const advise = backendFor({ device, dtype: 'float32' }).adviseHugePages;
    if (!advise || deviceMemory(device).hostMemory === undefined) return null;
    const bytes = new Uint8Array(total);
    advise(bytes as unknown as Storage['buffer']);
    return new HugePageBytes(bytes);
  }

  /** The next place of n bytes. */
  take(n: number): Uint8Array {
    const at = this.used;
    if (at + n > this.bytes.length) throw new RangeError(`HugePageBytes: ${n} bytes at ${at} past the block's ${this.bytes.length}`);
    this.used = at + HugePageBytes.span(n);
    return this.bytes.subarray(at, at + n);
  }
}
