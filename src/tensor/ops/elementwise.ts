import type { BinaryOp, UnaryOp } from '../backend.js';
import type { DeviceBuffer } from '../storage.js';
import { needsGrad, record } from '../autograd.js';
import { valuesReleased } from '../handover.js';
import { kernelsFor } from '../dispatch.js';
import { broadcastShapes, broadcastStrides, sameShape, sizeOf, stridesOf } from '../shape.js';
import { Tensor, allocStorage } from '../tensor.js';
import { sumAxesInto } from './reduce.js';

/** A number operand is promoted to a one-element tensor of the other operand's dtype. */
export type Operand = Tensor | number;

function asTensor(x: Operand, like: Tensor): Tensor {
  return typeof x === 'number' ? Tensor.full([], x, like.dtype, like.device) : x;
}

/**
 * Adds `g` (shaped `outShape`) into `target`'s gradient, summing over the dimensions that were
 * broadcast — the adjoint of broadcasting.
 */
export function accumulateBroadcastGrad(g: DeviceBuffer, outShape: readonly number[], target: Tensor): void {
  const tg = target.ensureGrad();
  const k = kernelsFor(target);
  if (sameShape(outShape, target.shape)) {
    k.axpy(1, g, tg);
    return;
  }
  const padded = [...new Array<number>(outShape.length - target.shape.length).fill(1), ...target.shape];
  const broadcastAxes = outShape.map((_, d) => d).filter((d) => padded[d] === 1);
  k.axpy(1, sumAxesInto(target, g, [...outShape], broadcastAxes), tg);
}

function binaryForward(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = Tensor.zeros(shape, a.dtype, a.device);
  kernelsFor(a).binary(op, a.buffer, broadcastStrides(a.shape, shape), b.buffer, broadcastStrides(b.shape, shape), out.buffer, shape);
  return out;
}

/** Elementwise product of two same-shaped buffers of `like`'s kind and n elements into a new one (for gradients). */
function mulBuf(like: Tensor, n: number, x: DeviceBuffer, y: DeviceBuffer): DeviceBuffer {
  const out = allocStorage(like.dtype, n, like.device).buffer;
  const s = [1];
  kernelsFor(like).binary('mul', x, s, y, s, out, [n]);
  return out;
}

/** Materialises `t` broadcast to `shape` (needed where a gradient multiplies by the other operand). */
function expandTo(t: Tensor, shape: readonly number[]): DeviceBuffer {
  if (sameShape(t.shape, shape)) return t.buffer;
  const out = allocStorage(t.dtype, sizeOf(shape), t.device).buffer;
  kernelsFor(t).stridedCopy(t.buffer, 0, broadcastStrides(t.shape, shape), out, 0, stridesOf(shape), [...shape], false);
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
      const neg = allocStorage(out.dtype, out.size, out.device).buffer;
      kernelsFor(out).unary('neg', gy, neg);
      accumulateBroadcastGrad(neg, out.shape, b);
    }
  });
}

export function mul(x: Operand, y: Operand): Tensor {
  const a = asTensor(x, y as Tensor), b = asTensor(y, a);
  const out = binaryForward('mul', a, b);
  return record(out, 'mul', [a, b], (gy) => {
    if (a.requiresGrad) accumulateBroadcastGrad(mulBuf(out, out.size, gy, expandTo(b, out.shape)), out.shape, a);
    if (b.requiresGrad) accumulateBroadcastGrad(mulBuf(out, out.size, gy, expandTo(a, out.shape)), out.shape, b);
  });
}

export function div(x: Operand, y: Operand): Tensor {
  const a = asTensor(x, y as Tensor), b = asTensor(y, a);
  const out = binaryForward('div', a, b);
  return record(out, 'div', [a, b], (gy) => {
    const k = kernelsFor(out);
    const bFull = expandTo(b, out.shape);
    const s = [1];
    const n = [out.size];
    if (a.requiresGrad) {
      const ga = allocStorage(out.dtype, out.size, out.device).buffer;
      k.binary('div', gy, s, bFull, s, ga, n);
      accumulateBroadcastGrad(ga, out.shape, a);
    }
    if (b.requiresGrad) {
      // d(a/b)/db = -out / b
      const gb = allocStorage(out.dtype, out.size, out.device).buffer;
      k.binary('div', out.buffer, s, bFull, s, gb, n);
      k.binary('mul', gb, s, gy, s, gb, n);
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
    const ga = x.requiresGrad ? allocStorage(out.dtype, out.size, out.device).buffer : null;
    const gb = y.requiresGrad ? allocStorage(out.dtype, out.size, out.device).buffer : null;
    kernelsFor(out).powBackward(aFull, bFull, out.buffer, gy, ga, gb);
    if (ga) accumulateBroadcastGrad(ga, out.shape, x);
    if (gb) accumulateBroadcastGrad(gb, out.shape, y);
  });
}

export function powScalar(x: Tensor, p: number): Tensor {
  const out = Tensor.zeros(x.shape, x.dtype, x.device);
  const k = kernelsFor(x);
  k.powScalar(x.buffer, p, out.buffer);
  return record(out, 'powScalar', [x], (gy) => {
    // d(x^0)/dx = 0 everywhere; x^(p-1) would be infinite at x = 0 (0 * inf = NaN).
    if (p === 0) {
      x.ensureGrad();
      return;
    }
    const d = allocStorage(x.dtype, x.size, x.device).buffer;
    k.powScalar(x.buffer, p - 1, d);
    k.binary('mul', d, [1], gy, [1], d, [x.size]);
    k.axpy(p, d, x.ensureGrad());
  });
}

/** x * scale + shift with scalar constants. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  const out = Tensor.zeros(x.shape, x.dtype, x.device);
  const k = kernelsFor(x);
  k.affine(x.buffer, scale, shift, out.buffer);
  return record(out, 'affine', [x], (gy) => k.axpy(scale, gy, x.ensureGrad()), false); // reads neither x nor its output
}

/** The unary ops whose derivative is computed from their output (the others read only x). */
const READS_OUTPUT: ReadonlySet<UnaryOp> = new Set<UnaryOp>(['exp', 'sqrt', 'tanh', 'sigmoid']);

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const out = Tensor.zeros(x.shape, x.dtype, x.device);
  const k = kernelsFor(x);
  k.unary(op, x.buffer, out.buffer);
  if (!needsGrad(x)) return out;
  // Where the kernel does not read y, out's values may have been released (handover.ts): x stands in.
  const y = (): DeviceBuffer => (valuesReleased(out) ? x.buffer : out.buffer);
  return record(out, op, [x], (gy) => k.unaryBackward(op, x.buffer, y(), gy, x.ensureGrad()), READS_OUTPUT.has(op));
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
