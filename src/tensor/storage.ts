/**
 * Where a tensor's values live: a storage handle (device, dtype, buffer), after tfjs-core's
 * `dataId` + `TensorStorage`. The op layer never indexes a buffer: it hands the opaque
 * `DeviceBuffer` to the backend chosen by the storage's (device, dtype) (dispatch.ts), and host
 * code reads or writes values through the handle only.
 *
 * The read contract, the same on every device: `read()` resolves to an owned copy (at once on the
 * cpu) and `write()` is the way values go in. Where the host addresses a device's memory directly
 * (the cpu) the device's allocator says so (`DeviceMemory.hostMemory`): that zero-copy access is
 * for the device boundary alone (src/train/boundary/), which runs collectives in place there.
 * `readSync()` remains for the code that has not moved behind the boundary yet: it refuses on a GPU
 * and scripts/count-raw-buffer-uses.mjs counts every call above the backends.
 */

import type { QuantType } from './quant/formats.js';

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
 * A quantized format (quant/formats.ts: 'q4_k', 'q8_0', 'mlx4' …) holds a frozen weight in its
 * blocks: `size` counts its weights, `byteLength` its bytes, and the host sees the raw bytes.
 */
export type DType = 'float32' | 'float64' | 'bfloat16' | 'int32' | QuantType;

/**
 * Host values as the CPU sees them (bfloat16: the raw 16-bit patterns, a Uint16Array; int32: an
 * Int32Array; a quantized format: its blocks' bytes, a Uint8Array).
 */
export type HostArray = Float32Array | Float64Array | Uint16Array | Int32Array | Uint8Array;

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
  /** A copy of the values in host memory, owned by the caller (resolved at once on the cpu). */
  read(): Promise<H>;
  /** The values now (the cpu's buffer itself; refused on a GPU). Counted above the backends: prefer read(). */
  readSync(): H;
  /** Copies `values` into elements [offset, offset + values.length). */
  write(values: ArrayLike<number>, offset?: number): void;
  /** Sets every element to 0 (an allocator's job, like cudaMemset, not a kernel over values). */
  zero(): void;
  /**
   * How many times write() or zero() changed the values (where a device counts them): what a cache
   * of a frozen weight's derived forms (ops/packed_weights.ts) checks. Kernels writing the buffer do
   * not count, so only values no kernel writes (a frozen weight) may be cached by it.
   */
  readonly version?: number;
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
  /**
   * A storage holding `values` (on the cpu device: adopting the array itself, no copy). Bytes
   * (a Uint8Array) are a quantized weight's blocks: `dtype` names the format.
   */
  fromHost<H extends HostArray>(values: H, dtype?: DType): Storage<H>;
  /**
   * The storage's own memory, where the host addresses this device's memory directly (the cpu:
   * the typed array itself, so what is written into it is the storage). Absent on a device the host
   * cannot map. For the device boundary (src/train/boundary/) alone.
   */
  hostMemory?<H extends HostArray>(storage: Storage<H>): H;
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

/** The dtype host values of this kind hold (bytes hold a quantized format, which the caller names). */
export function hostDType(values: HostArray): DType {
  if (values instanceof Uint8Array) throw new TypeError('host bytes are a quantized weight\'s blocks: name the format (fromHost(bytes, dtype))');
  if (values instanceof Uint16Array) return 'bfloat16';
  if (values instanceof Int32Array) return 'int32';
  return values instanceof Float64Array ? 'float64' : 'float32';
}
