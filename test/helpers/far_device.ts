/**
 * A device the host cannot map, for the boundary's tests without a GPU: its storages hold host
 * arrays privately, refuse readSync as a GPU does, and resolve read() after a delay chosen per
 * storage (so reads can finish out of call order). Registered once under the name 'far'.
 */
import {
  registerDevice, type DType, type DeviceBuffer, type DeviceMemory, type HostArray, type Storage,
} from '../../src/tensor/storage.js';

export const FAR = 'far';

export class FarStorage implements Storage<Float32Array> {
  readonly device = FAR;
  readonly dtype: DType = 'float32';
  /** Every write(), for tests that check what went back to the device. */
  readonly writes: number[][] = [];

  constructor(private readonly values: Float32Array, public readDelayMs = 0) {}

  get size(): number {
    return this.values.length;
  }

  get byteLength(): number {
    return this.values.byteLength;
  }

  get buffer(): DeviceBuffer {
    throw new Error('far device: no kernels');
  }

  read(): Promise<Float32Array> {
    const copy = this.values.slice();
    return new Promise((resolve) => setTimeout(() => resolve(copy), this.readDelayMs));
  }

  readSync(): Float32Array {
    throw new Error('far device: readSync is refused, as on a GPU');
  }

  write(values: ArrayLike<number>, offset = 0): void {
    this.writes.push(Array.from(values));
    this.values.set(values, offset);
  }

  zero(): void {
    this.values.fill(0);
  }

  view(offset: number, size: number): Storage<Float32Array> {
    return new FarStorage(this.values.subarray(offset, offset + size), this.readDelayMs);
  }

  dispose(): void {}

  /** The values as they are on the device (for assertions only). */
  peek(): number[] {
    return Array.from(this.values);
  }
}

const farMemory: DeviceMemory = {
  device: FAR,
  alloc: (_dtype: DType, n: number): Storage => new FarStorage(new Float32Array(n)),
  fromHost: <H extends HostArray>(values: H): Storage<H> => new FarStorage(Float32Array.from(values)) as unknown as Storage<H>,
};
registerDevice(farMemory);

export function far(values: number[], readDelayMs = 0): FarStorage {
  return new FarStorage(Float32Array.from(values), readDelayMs);
}
