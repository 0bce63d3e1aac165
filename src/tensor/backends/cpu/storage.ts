import type { Backend, BackendInfo, HostBackend } from '../../backend.js';
import {
  CPU, hostDType, registerDevice, type DType, type DeviceBuffer, type DeviceMemory, type HostArray, type Storage,
} from '../../storage.js';

/**
 * The cpu device: a storage's buffer is the typed array itself, so a kernel receives the very array
 * (no per-call conversion on the hot path) and the device boundary works in it in place
 * (`cpuMemory.hostMemory`). `read()` hands out a copy, as every device does.
 */
class CpuStorage<H extends HostArray> implements Storage<H> {
  readonly device = CPU;
  readonly dtype: DType;
  /** Writes through this handle (Storage.version). */
  version = 0;

  constructor(private readonly host: H) {
    this.dtype = hostDType(host);
  }

  get size(): number {
    return this.host.length;
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

  write(values: ArrayLike<number>, offset = 0): void {
    if (offset < 0 || offset + values.length > this.host.length) {
      throw new RangeError(`storage write: ${values.length} values at offset ${offset} do not fit ${this.host.length} elements`);
    }
    this.host.set(values, offset);
    this.version++;
  }

  zero(): void {
    this.host.fill(0);
    this.version++;
  }

  view(offset: number, size: number): Storage<H> {
    if (offset < 0 || size < 0 || offset + size > this.host.length) {
      throw new RangeError(`storage view [${offset}, ${offset + size}) is outside ${this.host.length} elements`);
    }
    return new CpuStorage(this.host.subarray(offset, offset + size) as H);
  }

  dispose(): void {
    // Host memory: the garbage collector frees it once nothing refers to it.
  }
}

function hostArrayOf(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'float64': return new Float64Array(n);
    case 'bfloat16': return new Uint16Array(n);
    case 'int32': return new Int32Array(n);
    default: return new Float32Array(n);
  }
}

export const cpuMemory: DeviceMemory = {
  device: CPU,
  alloc: (dtype: DType, n: number): Storage => new CpuStorage(hostArrayOf(dtype, n)),
  fromHost: <H extends HostArray>(values: H): Storage<H> => new CpuStorage(values),
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
