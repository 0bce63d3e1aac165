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
 * Bytes carved in order out of blocks backed by huge pages where the device's backend can advise
 * them: quantized weights of several formats (their blocks are bytes), read straight into their
 * places (nn/interchange/gguf_llama.ts for a generator). A decode step streams them all:
 * SmolLM2-135M's Q8_0 file decoded at 16.2–16.8 ms a token from huge pages, 18.7–18.9 from the
 * file's mapped pages (Q4_0: 12.4–12.8 against 13.4–13.7; one thread, an Intel Xeon, alternating
 * runs). Each place starts on a 64-byte line. A typed array holds at most 4 GiB in Node 20, and a
 * Llama-3.1-8B Q4_K_M file's blocks are 4.6 GiB: so the places are cut into blocks of at most
 * `maxBlock` bytes, each place whole in one; a block's tail that the next place does not fit stays
 * unwritten (untouched pages are not resident).
 */
export class HugePageBytes {
  /** The largest block: 4 GiB (a typed array's limit) less one huge page. */
  static readonly MAX_BLOCK = 2 ** 32 - 2 ** 21;
  private block = new Uint8Array(0);
  private used = 0;
  /** Bytes of the places taken so far (their spans). */
  private taken = 0;

  private constructor(
    private readonly total: number,
    private readonly maxBlock: number,
    private readonly advise: (bytes: Uint8Array) => void,
  ) {}

  /** Bytes a place of n takes in a block (n rounded up to whole 64-byte lines). */
  static span(n: number): number {
    return Math.ceil(n / 64) * 64;
  }

  /**
   * Places of `total` bytes in all (the sum of their spans) on `device`, in blocks of at most
   * `maxBlock` bytes, or null where its backend cannot advise huge pages or the host cannot address it.
   */
  static on(device: Device, total: number, maxBlock = HugePageBytes.MAX_BLOCK): HugePageBytes | null {
    const advise = backendFor({ device, dtype: 'float32' }).adviseHugePages;
    if (!advise || deviceMemory(device).hostMemory === undefined) return null;
    return new HugePageBytes(total, maxBlock, (bytes) => advise(bytes as unknown as Storage['buffer']));
  }

  /** The next place of n bytes: in the current block, or at the start of a new one. */
  take(n: number): Uint8Array {
    const span = HugePageBytes.span(n);
    if (this.taken + span > this.total) throw new RangeError(`HugePageBytes: ${n} bytes after ${this.taken} past the ${this.total} the places were counted at`);
    if (this.used + n > this.block.length) this.startBlock(span);
    const at = this.used;
    this.used += span;
    this.taken += span;
    return this.block.subarray(at, at + n);
  }

  /** A new block for the places still to come, at most maxBlock bytes (or the one place, if larger). */
  private startBlock(span: number): void {
    this.block = new Uint8Array(Math.max(span, Math.min(this.maxBlock, this.total - this.taken)));
    this.advise(this.block);
    this.used = 0;
  }
}
