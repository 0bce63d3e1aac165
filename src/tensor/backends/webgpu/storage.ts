/// <reference types="@webgpu/types" />
import type { DType, DeviceBuffer, DeviceMemory, HostArray, Storage } from '../../storage.js';
import type { GpuCachingAllocator } from './caching_allocator.js';
import type { GpuBuf, GpuStream } from './stream.js';

/** The device id of the WebGPU backend's memory. */
export const WEBGPU = 'webgpu';

/**
 * A storage in GPU memory: a view [offset, offset + size) of one GPUBuffer (an arena's views share
 * it). Values cross to the host only through `read()` (asynchronous: the stream is submitted and
 * the copy mapped); `readSync()` is refused. float64 storages (a sum of squares, which the cpu
 * accumulates in float64) are float32 on the GPU — WGSL has no f64 — and are widened on read;
 * int32 storages (indices) hold i32 values, read back as an Int32Array.
 * The buffer comes from the caching allocator; the storage and its views hold its lease, and
 * `dispose()` of the storage that allocated it frees it.
 */
class GpuStorage<H extends HostArray> implements Storage<H> {
  readonly device = WEBGPU;
  readonly buffer: DeviceBuffer;

  constructor(
    private readonly stream: GpuStream,
    private readonly allocator: GpuCachingAllocator,
    private readonly gpu: GPUBuffer,
    private readonly lease: object,
    readonly dtype: DType,
    private readonly offset: number,
    readonly size: number,
    private readonly root: boolean,
  ) {
    const view: GpuBuf = { gpu, offset, length: size, lease };
    this.buffer = view as unknown as DeviceBuffer;
  }

  get byteLength(): number {
    return this.size * 4;
  }

  async read(): Promise<H> {
    const bytes = await this.stream.read(this.gpu, this.offset * 4, this.size * 4);
    if (this.dtype === 'int32') return new Int32Array(bytes) as H;
    const f32 = new Float32Array(bytes);
    return (this.dtype === 'float64' ? Float64Array.from(f32) : f32) as H;
  }

  readSync(): H {
    throw new Error('webgpu: readSync() is not possible on a GPU storage (the host cannot map GPU memory synchronously): use await storage.read()');
  }

  write(values: ArrayLike<number>, offset = 0): void {
    if (offset < 0 || offset + values.length > this.size) {
      throw new RangeError(`storage write: ${values.length} values at offset ${offset} do not fit ${this.size} elements`);
    }
    if (values.length === 0) return;
    // Indices keep their bits (an int32 storage); anything else is float32 on the GPU.
    const data = this.dtype === 'int32'
      ? (values instanceof Int32Array ? values : Int32Array.from(values))
      : (values instanceof Float32Array ? values : Float32Array.from(values));
    const staging = this.stream.upload(data, GPUBufferUsage.COPY_SRC);
    this.stream.copy(staging, 0, this.gpu, (this.offset + offset) * 4, data.byteLength);
  }

  zero(): void {
    this.stream.clear(this.gpu, this.offset * 4, this.size * 4);
  }

  view(offset: number, size: number): Storage<H> {
    if (offset < 0 || size < 0 || offset + size > this.size) {
      throw new RangeError(`storage view [${offset}, ${offset + size}) is outside ${this.size} elements`);
    }
    return new GpuStorage(this.stream, this.allocator, this.gpu, this.lease, this.dtype, this.offset + offset, size, false);
  }

  dispose(): void {
    if (this.root) this.allocator.release(this.lease);
  }
}

/** The 'webgpu' device's memory over one stream: storages from the caching allocator. */
export function gpuMemory(stream: GpuStream, allocator: GpuCachingAllocator): DeviceMemory & { allocBuf(n: number): GpuBuf; freeBuf(buf: GpuBuf): void } {
  /** A storage of n elements, zeroed unless `zeroed` is false (the caller writes every element). */
  const alloc = (dtype: DType, n: number, zeroed = true): Storage => {
    const { gpu, lease, fresh } = allocator.acquire(n * 4);
    if (!fresh && zeroed) stream.clear(gpu, 0, gpu.size);
    return new GpuStorage(stream, allocator, gpu, lease, dtype, 0, n, true);
  };
  return {
    device: WEBGPU,
    alloc: (dtype: DType, n: number) => alloc(dtype, n),
    /** A zeroed float32 buffer (a kernel's scratch: some kernels accumulate into theirs). */
    allocBuf: (n: number): GpuBuf => alloc('float32', n).buffer as unknown as GpuBuf,
    /** Frees a buffer allocBuf made, once the kernels that use it are recorded (a kernel's scratch). */
    freeBuf: (buf: GpuBuf): void => {
      if (buf.lease) allocator.release(buf.lease);
    },
    fromHost<H extends HostArray>(values: H): Storage<H> {
      // Indices stay int32; every other host array is float32 on the GPU (float64 widened on read).
      const s = alloc(values instanceof Int32Array ? 'int32' : values instanceof Float64Array ? 'float64' : 'float32', values.length, false);
      s.write(values);
      return s as Storage<H>;
    },
    submit: () => stream.flush(),
  };
}
