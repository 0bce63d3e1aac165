/**
 * Where a tensor's values live: a storage handle (device, dtype, buffer), after tfjs-core's
 * `dataId` + `TensorStorage`. The op layer never indexes a buffer: it hands the opaque
 * `DeviceBuffer` to the backend chosen by the storage's (device, dtype) (dispatch.ts), and host
 * code reads or writes values through the handle only.
 *
 * The read contract: `readSync()` on the 'cpu' device returns the buffer itself (a zero-copy view:
 * writing into it writes the tensor, and the flat gradient the all-reduce sums is that view). A
 * device whose memory the host cannot map (a GPU) returns a fresh copy from `read()` and may refuse
 * `readSync()`; code that mutates what `readSync()` returned must `write()` it back to be portable.
 */

/** A device id: an open string ('cpu' today; 'webgpu' later). */
export type Device = string;

/** The cpu device: host memory. */
export const CPU: Device = 'cpu';

/**
 * 'bfloat16' (the top half of a float32: 8 exponent bits, 7 mantissa bits) holds the compute
 * copies the bf16 precision makes (docs/PRECISION.md): operands of the bf16 GEMM and convolution
 * kernels and activations saved for their backward. No other kernel takes it.
 * 'int32' holds indices — token ids, class labels, a max-pool's argmax — on the device whose
 * kernels read or write them, so they need not cross to the host on every call.
 */
export type DType = 'float32' | 'float64' | 'bfloat16' | 'int32';

/** Host values as the CPU sees them (bfloat16: the raw 16-bit patterns, a Uint16Array; int32: an Int32Array). */
export type HostArray = Float32Array | Float64Array | Uint16Array | Int32Array;

declare const deviceBufferBrand: unique symbol;
/**
 * A backend-owned buffer. Opaque on purpose: only code under src/tensor/backends/ knows what it
 * is (a typed array on the cpu device, a GPU buffer elsewhere) and casts it.
 */
export interface DeviceBuffer {
  readonly [deviceBufferBrand]: true;
}

/** A handle on one tensor's (or arena's) memory on one device. */
export interface Storage<H extends HostArray = HostArray> {
  readonly device: Device;
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Bytes the buffer occupies on its device. */
  readonly byteLength: number;
  /** What kernels receive. */
  readonly buffer: DeviceBuffer;
  /** The values, copied to the host when they live elsewhere. */
  read(): Promise<H>;
  /** The values now; on the cpu device the buffer itself (see the contract above). */
  readSync(): H;
  /** Copies `values` into elements [offset, offset + values.length). */
  write(values: ArrayLike<number>, offset?: number): void;
  /** Sets every element to 0 (an allocator's job, like cudaMemset, not a kernel over values). */
  zero(): void;
  /** Elements [offset, offset + size) as a storage sharing this one's memory (arena views). */
  view(offset: number, size: number): Storage<H>;
  /** Releases the memory (a no-op on the cpu device, where the garbage collector frees it). */
  dispose(): void;
}

/** A device's allocator: the only maker of storages on it. */
export interface DeviceMemory {
  readonly device: Device;
  /** A zeroed storage of n elements. */
  alloc(dtype: DType, n: number): Storage;
  /** A storage holding `values` (on the cpu device: adopting the array itself, no copy). */
  fromHost<H extends HostArray>(values: H): Storage<H>;
  /**
   * Hands the work recorded so far to the device now (a GPU's queue), so it runs while the host
   * waits on an earlier read. Absent where work runs as it is called (the cpu).
   */
  submit?(): void;
}

const devices = new Map<Device, DeviceMemory>();

/** Makes a device's allocator known (a backend module registers its device when loaded). */
export function registerDevice(memory: DeviceMemory): void {
  devices.set(memory.device, memory);
}

export function deviceMemory(device: Device): DeviceMemory {
  const memory = devices.get(device);
  if (!memory) throw new Error(`no device "${device}" is registered (known: ${[...devices.keys()].join(', ') || 'none'})`);
  return memory;
}

/** The dtype host values of this kind hold. */
export function hostDType(values: HostArray): DType {
  if (values instanceof Uint16Array) return 'bfloat16';
  if (values instanceof Int32Array) return 'int32';
  return values instanceof Float64Array ? 'float64' : 'float32';
}
