import type { BinaryOp, Buf, UnaryOp } from '../backend.js';
import { needsGrad, record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { broadcastShapes, broadcastStrides, sameShape, sizeOf, stridesOf } from '../shape.js';
import { Tensor, allocBuf } from '../tensor.js';
import { sumAxesInto } from './reduce.js';

/** A number operand is promoted to a one-element tensor of the other operand's dtype. */
type Operand = Tensor | number;

function asTensor(x: Operand, like: Tensor): Tensor {
  return typeof x === 'number' ? Tensor.full([], x, like.dtype) : x;
}

/**
 * Adds `g` (shaped `outShape`) into `target`'s gradient, summing over the dimensions that were
 * broadcast — the adjoint of broadcasting.
 */
export function accumulateBroadcastGrad(g: Buf, outShape: readonly number[], target: Tensor): void {
  const tg = target.ensureGrad();
  const k = kernelsFor(g);
  if (sameShape(outShape, target.shape)) {
    k.axpy(1, g, tg);
    return;
  }
  const padded = [...new Array<number>(outShape.length - target.shape.length).fill(1), ...target.shape];
  const broadcastAxes = outShape.map((_, d) => d).filter((d) => padded[d] === 1);
  k.axpy(1, sumAxesInto(g, [...outShape], broadcastAxes), tg);
}

function binaryForward(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = Tensor.zeros(shape, a.dtype);
  kernelsFor(a.data).binary(op, a.data, broadcastStrides(a.shape, shape), b.data, broadcastStrides(b.shape, shape), out.data, shape);
  return out;
}

/** Elementwise product of two same-shaped buffers into a new one (for gradients). */
function mulBuf(x: Buf, y: Buf): Buf {
  const out = allocBuf(x instanceof Float64Array ? 'float64' : 'float32', x.length);
  const s = [1];
  kernelsFor(x).binary('mul', x, s, y, s, out, [x.length]);
  return out;
}

/** Materialises `t` broadcast to `shape` (needed where a gradient multiplies by the other operand). */
function expandTo(t: Tensor, shape: readonly number[]): Buf {
  if (sameShape(t.shape, shape)) return t.data;
  const out = allocBuf(t.dtype, sizeOf(shape));
  kernelsFor(t.data).stridedCopy(t.data, 0, broadcastStrides(t.shape, shape), out, 0, stridesOf(shape), [...shape], false);
  return out;
}

export function add(x: Operand, y: Operand): Tensor {
  const a = asTensor(x, y as Tensor), b = asTensor(y, a);
  const out = binaryForward('add', a, b);
  return record(out, 'add', [a, b], (gy) => {
    if (a.requiresGrad) accumulateBroadcastGrad(gy, out.shape, a);
    if (b.requiresGrad) accumulateBroadcastGrad(gy, out.shape, b);
  });
}

export function sub(x: Operand, y: Operand): Tensor {
  const a = asTensor(x, y as Tensor), b = asTensor(y, a);
  const out = binaryForward('sub', a, b);
  return record(out, 'sub', [a, b], (gy) => {
    if (a.requiresGrad) accumulateBroadcastGrad(gy, out.shape, a);
    if (b.requiresGrad) {
      const neg = allocBuf(out.dtype, gy.length);
      kernelsFor(gy).unary('neg', gy, neg);
      accumulateBroadcastGrad(neg, out.shape, b);
    }
  });
}

export function mul(x: Operand, y: Operand): Tensor {
  const a = asTensor(x, y as Tensor), b = asTensor(y, a);
  const out = binaryForward('mul', a, b);
  return record(out, 'mul', [a, b], (gy) => {
    if (a.requiresGrad) accumulateBroadcastGrad(mulBuf(gy, expandTo(b, out.shape)), out.shape, a);
    if (b.requiresGrad) accumulateBroadcastGrad(mulBuf(gy, expandTo(a, out.shape)), out.shape, b);
  });
}

export function div(x: Operand, y: Operand): Tensor {
  const a = asTensor(x, y as Tensor), b = asTensor(y, a);
  const out = binaryForward('div', a, b);
  return record(out, 'div', [a, b], (gy) => {
    const k = kernelsFor(gy);
    const bFull = expandTo(b, out.shape);
    const s = [1];
    if (a.requiresGrad) {
      const ga = allocBuf(out.dtype, gy.length);
      k.binary('div', gy, s, bFull, s, ga, [gy.length]);
      accumulateBroadcastGrad(ga, out.shape, a);
    }
    if (b.requiresGrad) {
      // d(a/b)/db = -out / b
      const gb = allocBuf(out.dtype, gy.length);
      k.binary('div', out.data, s, bFull, s, gb, [gy.length]);
      k.binary('mul', gb, s, gy, s, gb, [gy.length]);
      k.unary('neg', gb, gb);
      accumulateBroadcastGrad(gb, out.shape, b);
    }
  });
}

/** a ** b elementwise (b a tensor or number). */
export function pow(x: Tensor, y: Operand): Tensor {
  if (typeof y === 'number') return powScalar(x, y);
  const out = binaryForward('pow', x, y);
  return record(out, 'pow', [x, y], (gy) => {
    const aFull = expandTo(x, out.shape);
    const bFull = expandTo(y, out.shape);
    if (x.requiresGrad) {
      const ga = allocBuf(out.dtype, gy.length);
      // An exponent of 0 has a zero derivative even at a = 0 (where a^(b-1) is infinite), as in torch.
      for (let i = 0; i < ga.length; i++) ga[i] = bFull[i] === 0 ? 0 : gy[i] * bFull[i] * Math.pow(aFull[i], bFull[i] - 1);
      accumulateBroadcastGrad(ga, out.shape, x);
    }
    if (y.requiresGrad) {
      const gb = allocBuf(out.dtype, gy.length);
      for (let i = 0; i < gb.length; i++) gb[i] = aFull[i] > 0 ? gy[i] * out.data[i] * Math.log(aFull[i]) : 0;
      accumulateBroadcastGrad(gb, out.shape, y);
    }
  });
}

export function powScalar(x: Tensor, p: number): Tensor {
  const out = Tensor.zeros(x.shape, x.dtype);
  const k = kernelsFor(x.data);
  k.powScalar(x.data, p, out.data);
  return record(out, 'powScalar', [x], (gy) => {
    // d(x^0)/dx = 0 everywhere; x^(p-1) would be infinite at x = 0 (0 * inf = NaN).
    if (p === 0) {
      x.ensureGrad();
      return;
    }
    const d = allocBuf(x.dtype, x.size);
    k.powScalar(x.data, p - 1, d);
    k.binary('mul', d, [1], gy, [1], d, [d.length]);
    k.axpy(p, d, x.ensureGrad());
  });
}

/** x * scale + shift with scalar constants. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  const out = Tensor.zeros(x.shape, x.dtype);
  kernelsFor(x.data).affine(x.data, scale, shift, out.data);
  return record(out, 'affine', [x], (gy) => kernelsFor(gy).axpy(scale, gy, x.ensureGrad()));
}

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const out = Tensor.zeros(x.shape, x.dtype);
  const k = kernelsFor(x.data);
  k.unary(op, x.data, out.data);
  if (!needsGrad(x)) return out;
  return record(out, op, [x], (gy) => k.unaryBackward(op, x.data, out.data, gy, x.ensureGrad()));
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
/** GELU, tanh approximation (GPT-2's gelu_new, torch's approximate='tanh'). */
export const gelu = (x: Tensor): Tensor => unaryOp('gelu', x);
/** Exact GELU x·Φ(x) (BERT's "gelu", torch's default nn.GELU()). */
export const geluErf = (x: Tensor): Tensor => unaryOp('geluErf', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);
