/**
 * The storage a ZeRO-3 parameter holds while it is not gathered: the right size and type, so the
 * tensor keeps its shape, but no memory, and any use names the parameter instead of computing on
 * stale values.
 */
import { CPU, type Device, type DeviceBuffer, type DType, type Storage } from '../../tensor/storage.js';

export class ReleasedStorage implements Storage<Float32Array> {
  readonly byteLength = 0;

  /** `dtype` and `device`: what the parameter is and where it lives when gathered (a frozen base held in bf16 is bfloat16). */
  constructor(readonly size: number, private readonly name: string, readonly dtype: DType = 'float32', readonly device: Device = CPU) {}

  private fail(): never {
    throw new Error(`ZeRO-3: parameter ${this.name} is used while it is sharded (its layer group was not gathered)`);
  }

  get buffer(): DeviceBuffer {
    return this.fail();
  }

  read(): Promise<Float32Array> {
    return this.fail();
  }

  readSync(): Float32Array {
    return this.fail();
  }

  write(): void {
    this.fail();
  }

  zero(): void {
    this.fail();
  }

  view(): Storage<Float32Array> {
    return this.fail();
  }

  dispose(): void {}
}
