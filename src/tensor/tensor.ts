import { fmtShape, sizeOf } from './shape.js';
import type { Rng } from '../util/rng.js';
import { activeRecycler } from './recycler.js';
import { markPoolable, takePooled } from './buffer_pool.js';
import { kernelsFor } from './dispatch.js';
import { randomInitSkipped } from './init_scope.js';
import { CPU, deviceMemory, type DType, type Device, type DeviceBuffer, type HostArray, type Storage } from './storage.js';

export type { DType, Device } from './storage.js';

/** How a tensor was made: its inputs and the function that pushes its gradient into theirs. */
export interface GradFn {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Accumulates this tensor's gradient `gy` into the inputs' gradients (awaited where it sums over a group). */
  backward(gy: DeviceBuffer): void | Promise<void>;
  /**
   * Whether `backward` reads this tensor's own values; false lets them go early (handover.ts).
   * 'sign': it reads only which values are > 0 (a ReLU mask), which a bf16 copy of them keeps, so
   * an op that keeps such a copy may let the float32 values go (handover.ts, `standInFor`).
   */
  readonly readsOutput: boolean | 'sign';
}

/**
 * A zeroed storage: fresh, a reused one inside a `BufferRecycler.run` (recycler.ts), or a large
 * one that autograd gave back to the pool (buffer_pool.ts) — on the given device.
 */
export function allocStorage(dtype: DType, n: number, device: Device = CPU): Storage {
  const recycler = activeRecycler();
  if (recycler) return recycler.take(device, dtype, n);
  const pooled = takePooled(device, dtype, n);
  if (pooled) {
    pooled.zero();
    return pooled;
  }
  return poolableStorage(device, dtype, n);
}

/**
 * allocStorage for a caller that overwrites every element before reading any (a GEMM with beta 0,
 * a softmax): a reused buffer keeps its old values, which spares a pass over it.
 */
export function allocUninit(dtype: DType, n: number, device: Device = CPU): Storage {
  const recycler = activeRecycler();
  if (recycler) return recycler.take(device, dtype, n, false);
  return takePooled(device, dtype, n) ?? poolableStorage(device, dtype, n);
}

/** A fresh storage that autograd may give back to the pool once it is dead. */
function poolableStorage(device: Device, dtype: DType, n: number): Storage {
  const s = deviceMemory(device).alloc(dtype, n);
  markPoolable(s);
  return s;
}

/**
 * A dense, contiguous, row-major n-d array with an optional gradient, held in a storage handle
 * (storage.ts). Every op returns a new tensor; the storage of a parameter is a view into its
 * module's arena, and so is its grad.
 */
export class Tensor {
  readonly shape: readonly number[];
  storage: Storage;
  grad: Storage | null = null;
  requiresGrad: boolean;
  gradFn: GradFn | null = null;
  /** Optional label (parameter name) for messages. */
  name = '';

  constructor(storage: Storage, shape: readonly number[], requiresGrad = false) {
    if (sizeOf(shape) !== storage.size) {
      throw new Error(`Tensor: shape ${fmtShape(shape)} needs ${sizeOf(shape)} elements, buffer has ${storage.size}`);
    }
    this.storage = storage;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
  }

  /** A tensor of host values on `device`: the cpu adopts the array (no copy), another device uploads it. */
  static fromHost(values: HostArray, shape: readonly number[], requiresGrad = false, device: Device = CPU): Tensor {
    return new Tensor(deviceMemory(device).fromHost(values), shape, requiresGrad);
  }

  /** The opaque buffer kernels take. */
  get buffer(): DeviceBuffer {
    return this.storage.buffer;
  }

  get device(): Device {
    return this.storage.device;
  }

  get dtype(): DType {
    return this.storage.dtype;
  }

  get size(): number {
    return this.storage.size;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The values on the host (storage.ts: a zero-copy view on the cpu device). */
  values(): HostArray {
    return this.storage.readSync();
  }

  /** The values, copied to the host from wherever they live. */
  read(): Promise<HostArray> {
    return this.storage.read();
  }

  /** The value of a one-element tensor (read from its device when asked). */
  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor of shape ${fmtShape(this.shape)} has ${this.size} elements`);
    return this.storage.readSync()[0];
  }

  toArray(): number[] {
    return Array.from(this.storage.readSync());
  }

  /** The gradient's values on the host, or null (a zero-copy view on the cpu device). */
  gradValues(): HostArray | null {
    return this.grad ? this.grad.readSync() : null;
  }

  /**
   * Rebinds this tensor's values and gradient to other storages of the same size and dtype (a
   * parameter becoming a view into its arena).
   */
  bind(storage: Storage, grad: Storage | null): void {
    for (const s of grad ? [storage, grad] : [storage]) {
      if (s.size !== this.size || s.dtype !== this.dtype) {
        throw new Error(`Tensor ${this.name || fmtShape(this.shape)}: cannot bind a ${s.dtype} storage of ${s.size} elements to a ${this.dtype} tensor of ${this.size}`);
      }
    }
    this.storage = storage;
    this.grad = grad;
    this.zeroedGrad = null;
  }

  /**
   * A frozen tensor's values replaced by a storage of another dtype holding as many elements: a
   * weight quantized where it stands (nn/quantize_model.ts), its layer's field and name unchanged.
   */
  holdFrozen(storage: Storage): void {
    if (this.requiresGrad) throw new Error(`Tensor ${this.name || fmtShape(this.shape)}: only a frozen tensor may change its dtype (it trains)`);
    if (storage.size !== this.size) throw new Error(`Tensor ${this.name || fmtShape(this.shape)}: a storage of ${storage.size} elements cannot hold its ${this.size}`);
    this.storage = storage;
    this.grad = null;
    this.zeroedGrad = null;
  }

  /**
   * The gradient storage ParamArena.zeroGrads last zeroed, while nothing has been asked for it
   * since (ensureGrad or gradToOverwrite forget it; a new grad is another storage object).
   */
  private zeroedGrad: Storage | null = null;

  /** This tensor's gradient has just been zeroed: the next gradToOverwrite may hand it out to be written whole. */
  markGradZeroed(): void {
    this.zeroedGrad = this.grad;
  }

  /** The gradient buffer, allocated (zeroed) on first use. */
  ensureGrad(): DeviceBuffer {
    this.zeroedGrad = null;
    // A leaf's gradient accumulates across passes: never a buffer a recycler would take back.
    if (!this.grad) this.grad = this.gradFn ? allocStorage(this.dtype, this.size, this.device) : deviceMemory(this.device).alloc(this.dtype, this.size);
    return this.grad.buffer;
  }

  /**
   * For a backward that writes every cell of this tensor's gradient (rather than adding to it): the
   * buffer to write, left unzeroed, or null when a gradient already holds something (the caller
   * then accumulates into ensureGrad()).
   */
  gradToOverwrite(): DeviceBuffer | null {
    if (this.grad) {
      // A parameter's gradient the arena has just zeroed may be written whole as well.
      const zeroed = this.grad === this.zeroedGrad;
      this.zeroedGrad = null;
      return zeroed ? this.grad.buffer : null;
    }
    this.grad = this.gradFn ? allocUninit(this.dtype, this.size, this.device) : deviceMemory(this.device).alloc(this.dtype, this.size);
    return this.grad.buffer;
  }

  /** A tensor sharing this one's storage but cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape);
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32', device: Device = CPU): Tensor {
    return new Tensor(allocStorage(dtype, sizeOf(shape), device), shape);
  }

  static full(shape: readonly number[], value: number, dtype: DType = 'float32', device: Device = CPU): Tensor {
    const t = new Tensor(allocUninit(dtype, sizeOf(shape), device), shape);
    kernelsFor(t).fill(t.buffer, value);
    return t;
  }

  static from(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float32', device: Device = CPU): Tensor {
    const s = allocUninit(dtype, values.length, device);
    s.write(values);
    return new Tensor(s, shape);
  }

  static randn(shape: readonly number[], rng: Rng, dtype: DType = 'float32', std = 1, device: Device = CPU): Tensor {
    const t = new Tensor(allocUninit(dtype, sizeOf(shape), device), shape);
    if (randomInitSkipped()) kernelsFor(t).fill(t.buffer, 0);
    else kernelsFor(t).fillNormal(t.buffer, rng, std);
    return t;
  }

  static uniform(shape: readonly number[], rng: Rng, low: number, high: number, dtype: DType = 'float32', device: Device = CPU): Tensor {
    const t = new Tensor(allocUninit(dtype, sizeOf(shape), device), shape);
    if (randomInitSkipped()) kernelsFor(t).fill(t.buffer, 0);
    else kernelsFor(t).fillUniform(t.buffer, rng, low, high);
    return t;
  }
}
