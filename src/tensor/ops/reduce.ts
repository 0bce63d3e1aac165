import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { normAxis, sizeOf, stridesOf } from '../shape.js';
import type { DType, Device, DeviceBuffer, Storage } from '../storage.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';

/** Axes normalised, deduplicated and sorted; all axes when none are given. */
function resolveAxes(op: string, x: Tensor, axes: number | number[] | undefined): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  return [...new Set(list.map((a) => normAxis(op, a, x.ndim, x.shape)))].sort((p, q) => p - q);
}

function reducedShape(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

/**
 * Sums `buf` (shaped `shape`, of `like`'s device and dtype) over `axes`, one kernel call per axis,
 * and sets those entries of `shape` to 1 in place. Returns `buf` itself when there is nothing to reduce.
 */
export function sumAxesInto(like: { readonly device: Device; readonly dtype: DType }, buf: DeviceBuffer, shape: number[], axes: readonly number[]): DeviceBuffer {
  return sumAxes(like, buf, shape, axes)?.buffer ?? buf;
}

/** sumAxesInto's work: the storage of the last reduction, or null when none ran. */
function sumAxes(like: { readonly device: Device; readonly dtype: DType }, buf: DeviceBuffer, shape: number[], axes: readonly number[]): Storage | null {
  const k = kernelsFor(like);
  let cur = buf;
  let last: Storage | null = null;
  for (const a of axes) {
    if (shape[a] === 1) continue;
    const outer = sizeOf(shape.slice(0, a));
    const inner = sizeOf(shape.slice(a + 1));
    last = allocStorage(like.dtype, outer * inner, like.device);
    k.reduceSum(cur, outer, shape[a], inner, last.buffer);
    cur = last.buffer;
    shape[a] = 1;
  }
  return last;
}

/** Sum over the given axes (all by default). */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = resolveAxes('sum', x, axes);
  const k = kernelsFor(x);
  const curShape = [...x.shape];
  let cur = sumAxes(x, x.buffer, curShape, ax);
  if (!cur) {
    // Nothing to reduce: the sum is a copy of x (never x's own storage).
    cur = allocStorage(x.dtype, x.size, x.device);
    k.stridedCopy(x.buffer, 0, [1], cur.buffer, 0, [1], [x.size], false);
  }
  const out = new Tensor(cur, reducedShape(x.shape, ax, keepDims));
  return record(out, 'sum', [x], (gy) => {
    // Broadcast gy (shaped like x with the reduced axes at 1) back over x.
    const strides = stridesOf(curShape).map((s, i) => (curShape[i] === 1 ? 0 : s));
    k.stridedCopy(gy, 0, strides, x.ensureGrad(), 0, stridesOf(x.shape), [...x.shape], true);
  });
}

export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = resolveAxes('mean', x, axes);
  const count = ax.reduce((n, a) => n * x.shape[a], 1);
  const s = sum(x, ax, keepDims);
  return scaleInto(s, 1 / count);
}

/** Multiplies by a constant, keeping the graph (mean = sum / count). */
function scaleInto(t: Tensor, c: number): Tensor {
  const out = Tensor.zeros(t.shape, t.dtype, t.device);
  const k = kernelsFor(t);
  k.affine(t.buffer, c, 0, out.buffer);
  return record(out, 'scale', [t], (gy) => k.axpy(c, gy, t.ensureGrad()));
}

/** Maximum over one axis; the gradient flows to the first maximal element. */
export function max(x: Tensor, axis: number, keepDims = false): Tensor {
  const a = normAxis('max', axis, x.ndim, x.shape);
  const outer = sizeOf(x.shape.slice(0, a));
  const n = x.shape[a];
  const inner = sizeOf(x.shape.slice(a + 1));
  const out = Tensor.zeros(reducedShape(x.shape, [a], keepDims), x.dtype, x.device);
  // The indices stay where x is (an int32 storage), for the backward's kernel to read.
  const arg = allocUninit('int32', outer * inner, x.device).buffer;
  const k = kernelsFor(x);
  k.reduceMax(x.buffer, outer, n, inner, out.buffer, arg);
  return record(out, 'max', [x], (gy) => k.reduceMaxBackward(gy, arg, outer, n, inner, x.ensureGrad()));
}

/**
 * Indices of the maximum along the last axis (no gradient; the first maximum wins): an int32
 * tensor of x's leading shape on x's device, where they are computed.
 */
export function argmaxIndices(x: Tensor): Tensor {
  const n = x.shape[x.ndim - 1];
  const rows = x.size / n;
  const out = allocStorage(x.dtype, rows, x.device);
  const arg = allocUninit('int32', rows, x.device);
  kernelsFor(x).reduceMax(x.buffer, rows, n, 1, out.buffer, arg.buffer);
  return new Tensor(arg, x.shape.slice(0, -1));
}

/** argmaxIndices read to the host (predictions from logits): at once on the cpu, awaited from a GPU. */
export async function argmax(x: Tensor): Promise<Int32Array> {
  return (await argmaxIndices(x).read()) as Int32Array;
}
