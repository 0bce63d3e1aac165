import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, fmtShape, normAxis, sizeOf, stridesOf } from '../shape.js';
import { Tensor } from '../tensor.js';

/** Same data, new shape (one dimension may be -1). Shares the buffer: no copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1);
  const free = shape.length - known.length;
  const knownSize = sizeOf(known);
  if (free > 1 || (free === 1 && (knownSize === 0 || x.size % knownSize !== 0))) {
    throw new ShapeError('reshape', `cannot infer -1 in ${fmtShape(shape)}`, [x.shape]);
  }
  const resolved = shape.map((d) => (d === -1 ? x.size / knownSize : d));
  if (sizeOf(resolved) !== x.size) throw new ShapeError('reshape', `cannot reshape to ${fmtShape(resolved)}`, [x.shape]);
  const out = new Tensor(x.storage, resolved);
  return record(out, 'reshape', [x], (gy) => kernelsFor(x).axpy(1, gy, x.ensureGrad()));
}

/** Flattens all dimensions from `startDim` on (torch.flatten). */
export function flatten(x: Tensor, startDim = 1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const d = normAxis('flatten', startDim, x.ndim, x.shape);
  return reshape(x, [...x.shape.slice(0, d), sizeOf(x.shape.slice(d))]);
}

/** Reorders dimensions; out.shape[i] = x.shape[perm[i]]. Copies into a contiguous tensor. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || new Set(perm.map((p) => normAxis('permute', p, x.ndim, x.shape))).size !== x.ndim) {
    throw new ShapeError('permute', `invalid permutation [${perm.join(', ')}]`, [x.shape]);
  }
  const p = perm.map((d) => normAxis('permute', d, x.ndim, x.shape));
  const xs = stridesOf(x.shape);
  const shape = p.map((d) => x.shape[d]);
  const out = Tensor.zeros(shape, x.dtype, x.device);
  const k = kernelsFor(x);
  const srcStrides = p.map((d) => xs[d]);
  k.stridedCopy(x.buffer, 0, srcStrides, out.buffer, 0, stridesOf(shape), shape, false);
  return record(out, 'permute', [x], (gy) => {
    k.stridedCopy(gy, 0, stridesOf(shape), x.ensureGrad(), 0, srcStrides, shape, true);
  }, false);
}

/** Swaps two dimensions (default: the last two). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const a = normAxis('transpose', dim0, x.ndim, x.shape);
  const b = normAxis('transpose', dim1, x.ndim, x.shape);
  const perm = x.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** Elements [start, end) along `axis` (negative indices count from the end). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const a = normAxis('slice', axis, x.ndim, x.shape);
  const n = x.shape[a];
  const s = start < 0 ? start + n : start;
  const e = end < 0 ? end + n : Math.min(end, n);
  if (s < 0 || s > e) throw new ShapeError('slice', `range [${start}, ${end}) invalid on axis ${axis} of size ${n}`, [x.shape]);
  const shape = [...x.shape];
  shape[a] = e - s;
  const xs = stridesOf(x.shape);
  const out = Tensor.zeros(shape, x.dtype, x.device);
  const k = kernelsFor(x);
  const offset = s * xs[a];
  k.stridedCopy(x.buffer, offset, xs, out.buffer, 0, stridesOf(shape), shape, false);
  return record(out, 'slice', [x], (gy) => {
    k.stridedCopy(gy, 0, stridesOf(shape), x.ensureGrad(), offset, xs, shape, true);
  });
}

/** Joins tensors along `axis`; all other dimensions must agree. */
export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError('concat', 'needs at least one tensor', []);
  const first = xs[0];
  const a = normAxis('concat', axis, first.ndim, first.shape);
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError('concat', `shapes differ outside axis ${axis}`, xs.map((u) => u.shape));
    }
  }
  const shape = [...first.shape];
  shape[a] = xs.reduce((n, t) => n + t.shape[a], 0);
  const outStrides = stridesOf(shape);
  const out = Tensor.zeros(shape, first.dtype, first.device);
  const k = kernelsFor(first);
  const offsets: number[] = [];
  let at = 0;
  for (const t of xs) {
    offsets.push(at * outStrides[a]);
    k.stridedCopy(t.buffer, 0, stridesOf(t.shape), out.buffer, at * outStrides[a], outStrides, [...t.shape], false);
    at += t.shape[a];
  }
  return record(out, 'concat', xs, (gy) => {
    xs.forEach((t, i) => {
      if (t.requiresGrad) k.stridedCopy(gy, offsets[i], outStrides, t.ensureGrad(), 0, stridesOf(t.shape), [...t.shape], true);
    });
  });
}
