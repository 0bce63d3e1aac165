import type { Backend, BackendInfo, HostBackend } from '../../backend.js';
import { isQuantType, quantFormat } from '../../quant/formats.js';
import {
  CPU, hostDType, registerDevice, type DType, type DeviceBuffer, type DeviceMemory, type HostArray, type Storage,
} from '../../storage.js';

/**
 * The cpu device: a storage's buffer is the typed array itself, so a kernel receives the very array
 * (no per-call conversion on the hot path) and the device boundary works in it in place
 * (`cpuMemory.hostMemory`). `read()` hands out a copy, as every device does. A quantized weight's
 * storage is its blocks' bytes: sizes and offsets count weights (whole blocks), the array bytes.
 */
class CpuStorage<H extends HostArray> implements Storage<H> {
  readonly device = CPU;
  readonly dtype: DType;
  /** Writes through this handle (Storage.version). */
  version = 0;
  /** Weights per byte-run of a block, for a quantized dtype: [weights, bytes]; [1, 1] otherwise. */
  private readonly block: readonly [number, number];

  constructor(private readonly host: H, dtype?: DType) {
    this.dtype = dtype ?? hostDType(host);
    this.block = blockOf(this.dtype);
    if (host instanceof Uint8Array !== isQuantType(this.dtype)) throw new TypeError(`a cpu storage of ${this.dtype} cannot hold a ${host.constructor.name}`);
    if (host.length % this.block[1] !== 0) throw new RangeError(`${host.length} bytes are not whole ${this.dtype} blocks (${this.block[1]} bytes each)`);
  }

  get size(): number {
    return (this.host.length / this.block[1]) * this.block[0];
  }

  /** Elements (weights) → index into the host array, refused off a block's edge. */
  private at(elements: number, what: string): number {
    const [weights, bytes] = this.block;
    if (elements % weights !== 0) throw new RangeError(`storage ${what} at ${elements}: not on a ${this.dtype} block's edge (${weights} weights)`);
    return (elements / weights) * bytes;
  }

  get byteLength(): number {
    return this.host.byteLength;
  }

  get buffer(): DeviceBuffer {
    return this.host as unknown as DeviceBuffer;
  }

  read(): Promise<H> {
    return Promise.resolve(this.host.slice() as H);
  }

  /** The typed array itself (cpuMemory.hostMemory). */
  get own(): H {
    return this.host;
  }

  readSync(): H {
    return this.host;
  }

  /** Values, or for a quantized dtype the blocks' bytes, from element `offset` on. */
  write(values: ArrayLike<number>, offset = 0): void {
    const at = this.at(offset, 'write');
    if (at < 0 || at + values.length > this.host.length) {
      throw new RangeError(`storage write: ${values.length} values at offset ${offset} do not fit ${this.host.length} elements`);
    }
    this.host.set(values, at);
    this.version++;
  }

  zero(): void {
    this.host.fill(0);
    this.version++;
  }

  view(offset: number, size: number): Storage<H> {
    if (offset < 0 || size < 0 || offset + size > this.size) {
      throw new RangeError(`storage view [${offset}, ${offset + size}) is outside ${this.size} elements`);
    }
    const [from, to] = [this.at(offset, 'view'), this.at(offset + size, 'view')];
    return new CpuStorage(this.host.subarray(from, to) as H, this.dtype);
  }

  dispose(): void {
    // Host memory: the garbage collector frees it once nothing refers to it.
  }
}

/** [weights, bytes] of a quantized dtype's block; [1, 1] for the others (one element, one array slot). */
function blockOf(dtype: DType): readonly [number, number] {
  if (!isQuantType(dtype)) return [1, 1];
  const q = quantFormat(dtype);
  return [q.blockWeights, q.blockBytes];
}

function hostArrayOf(dtype: DType, n: number): HostArray {
  if (isQuantType(dtype)) {
    const [weights, bytes] = blockOf(dtype);
    if (n % weights !== 0) throw new RangeError(`${n} weights are not whole ${dtype} blocks (${weights} weights each)`);
    return new Uint8Array((n / weights) * bytes);
  }
  switch (dtype) {
    case 'float64': return new Float64Array(n);
    case 'bfloat16': return new Uint16Array(n);
    case 'int32': return new Int32Array(n);
    default: return new Float32Array(n);
  }
}

export const cpuMemory: DeviceMemory = {
  device: CPU,
  alloc: (dtype: DType, n: number): Storage => new CpuStorage(hostArrayOf(dtype, n), dtype),
  fromHost: <H extends HostArray>(values: H, dtype?: DType): Storage<H> => new CpuStorage(values, dtype),
  hostMemory<H extends HostArray>(storage: Storage<H>): H {
    if (!(storage instanceof CpuStorage)) throw new Error(`hostMemory: a ${storage.device} storage is not cpu memory`);
    return (storage as CpuStorage<H>).own;
  },
};

registerDevice(cpuMemory);

/** A cpu backend over host arrays, as the op layer sees it (the one cast of its buffers). */
export function cpuBackend(host: HostBackend): Backend {
  return host as unknown as Backend;
}

/** The host kernels of a cpu backend: for the backends' own tests, which pass typed arrays. */
export function hostKernels(backend: BackendInfo): HostBackend {
  if (backend.device !== CPU) throw new Error(`hostKernels: backend "${backend.name}" runs on ${backend.device}, not the cpu`);
  return backend as unknown as HostBackend;
}
