import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { normAxis, sizeOf, stridesOf } from '../shape.js';
import type { Buf } from '../backend.js';
import { Tensor, allocBuf, dtypeOf } from '../tensor.js';

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
 * Sums `buf` (shaped `shape`) over `axes`, one kernel call per axis, and sets those entries of
 * `shape` to 1 in place. Returns `buf` itself when there is nothing to reduce.
 */
export function sumAxesInto(buf: Buf, shape: number[], axes: readonly number[]): Buf {
  const k = kernelsFor(buf);
  let cur = buf;
  for (const a of axes) {
    if (shape[a] === 1) continue;
    const outer = sizeOf(shape.slice(0, a));
    const inner = sizeOf(shape.slice(a + 1));
    const next = allocBuf(dtypeOf(buf), outer * inner);
    k.reduceSum(cur, outer, shape[a], inner, next);
    cur = next;
    shape[a] = 1;
  }
  return cur;
}

/** Sum over the given axes (all by default). */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = resolveAxes('sum', x, axes);
  const k = kernelsFor(x.data);
  const curShape = [...x.shape];
  let cur = sumAxesInto(x.data, curShape, ax);
  if (cur === x.data) cur = cur.slice();
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
  const out = Tensor.zeros(t.shape, t.dtype);
  const k = kernelsFor(t.data);
  k.affine(t.data, c, 0, out.data);
  return record(out, 'scale', [t], (gy) => k.axpy(c, gy, t.ensureGrad()));
}

/** Maximum over one axis; the gradient flows to the first maximal element. */
export function max(x: Tensor, axis: number, keepDims = false): Tensor {
  const a = normAxis('max', axis, x.ndim, x.shape);
  const outer = sizeOf(x.shape.slice(0, a));
  const n = x.shape[a];
  const inner = sizeOf(x.shape.slice(a + 1));
  const out = new Tensor(allocBuf(x.dtype, outer * inner), reducedShape(x.shape, [a], keepDims));
  const arg = new Int32Array(outer * inner);
  kernelsFor(x.data).reduceMax(x.data, outer, n, inner, out.data, arg);
  return record(out, 'max', [x], (gy) => {
    const gx = x.ensureGrad();
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) gx[(o * n + arg[o * inner + i]) * inner + i] += gy[o * inner + i];
    }
  });
}

/** Indices of the maximum along the last axis (no gradient): predictions from logits. */
export function argmax(x: Tensor): Int32Array {
  const n = x.shape[x.ndim - 1];
  const rows = x.size / n;
  const out = allocBuf(x.dtype, rows);
  const arg = new Int32Array(rows);
  kernelsFor(x.data).reduceMax(x.data, rows, n, 1, out, arg);
  return arg;
}
