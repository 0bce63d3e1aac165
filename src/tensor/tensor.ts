import type { Buf } from './backend.js';
import { fmtShape, sizeOf } from './shape.js';
import type { Rng } from '../util/rng.js';
import { activeRecycler } from './recycler.js';
import { markPoolable, takePooled } from './buffer_pool.js';

export type DType = 'float32' | 'float64';

/** How a tensor was made: its inputs and the function that pushes its gradient into theirs. */
export interface GradFn {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Accumulates this tensor's gradient `gy` into the inputs' gradients. */
  backward(gy: Buf): void;
}

/**
 * A zeroed buffer: fresh, a reused one inside a `BufferRecycler.run` (recycler.ts), or a large
 * one that autograd gave back to the pool (buffer_pool.ts).
 */
export function allocBuf(dtype: DType, n: number): Buf {
  const recycler = activeRecycler();
  if (recycler) return recycler.take(dtype === 'float64', n);
  const pooled = takePooled(dtype === 'float64', n);
  return pooled ? pooled.fill(0) : poolableBuf(dtype, n);
}

/**
 * allocBuf for a caller that overwrites every element before reading any (a GEMM with beta 0, a
 * softmax): a reused buffer keeps its old values, which spares a pass over it.
 */
export function allocUninit(dtype: DType, n: number): Buf {
  const recycler = activeRecycler();
  if (recycler) return recycler.take(dtype === 'float64', n, false);
  return takePooled(dtype === 'float64', n) ?? poolableBuf(dtype, n);
}

/** A fresh buffer that autograd may give back to the pool once it is dead. */
function poolableBuf(dtype: DType, n: number): Buf {
  const buf = freshBuf(dtype, n);
  markPoolable(buf);
  return buf;
}

function freshBuf(dtype: DType, n: number): Buf {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

export function dtypeOf(buf: Buf): DType {
  return buf instanceof Float64Array ? 'float64' : 'float32';
}

/**
 * A dense, contiguous, row-major n-d array with an optional gradient. Every op returns a new
 * tensor; the data buffer of a parameter is a view into its module's arena, and so is its grad.
 */
export class Tensor {
  readonly shape: readonly number[];
  data: Buf;
  grad: Buf | null = null;
  requiresGrad: boolean;
  gradFn: GradFn | null = null;
  /** Optional label (parameter name) for messages. */
  name = '';

  constructor(data: Buf, shape: readonly number[], requiresGrad = false) {
    if (sizeOf(shape) !== data.length) {
      throw new Error(`Tensor: shape ${fmtShape(shape)} needs ${sizeOf(shape)} elements, buffer has ${data.length}`);
    }
    this.data = data;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get dtype(): DType {
    return dtypeOf(this.data);
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) throw new Error(`item(): tensor of shape ${fmtShape(this.shape)} has ${this.data.length} elements`);
    return this.data[0];
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  /** The gradient buffer, allocated (zeroed) on first use. */
  ensureGrad(): Buf {
    // A leaf's gradient accumulates across passes: never a buffer a recycler would take back.
    if (!this.grad) this.grad = this.gradFn ? allocBuf(this.dtype, this.data.length) : freshBuf(this.dtype, this.data.length);
    return this.grad;
  }

  /**
   * For a backward that writes every cell of this tensor's gradient (rather than adding to it): the
   * buffer to write, left unzeroed, or null when a gradient already holds something (the caller
   * then accumulates into ensureGrad()).
   */
  gradToOverwrite(): Buf | null {
    if (this.grad) return null;
    this.grad = this.gradFn ? allocUninit(this.dtype, this.data.length) : freshBuf(this.dtype, this.data.length);
    return this.grad;
  }

  /** A tensor sharing this one's data but cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return new Tensor(allocBuf(dtype, sizeOf(shape)), shape);
  }

  static full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
    const t = Tensor.zeros(shape, dtype);
    t.data.fill(value);
    return t;
  }

  static from(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float32'): Tensor {
    const buf = allocBuf(dtype, values.length);
    buf.set(values);
    return new Tensor(buf, shape);
  }

  static randn(shape: readonly number[], rng: Rng, dtype: DType = 'float32', std = 1): Tensor {
    const t = Tensor.zeros(shape, dtype);
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * std;
    return t;
  }

  static uniform(shape: readonly number[], rng: Rng, low: number, high: number, dtype: DType = 'float32'): Tensor {
    const t = Tensor.zeros(shape, dtype);
    for (let i = 0; i < t.data.length; i++) t.data[i] = low + (high - low) * rng.uniform();
    return t;
  }
}
