import type { BinaryOp, Buf, UnaryOp } from '../../backend.js';
import { philox4x32 } from '../../../util/philox.js';
import { normalCdf } from './erf.js';

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

export function unary(op: UnaryOp, x: Buf, out: Buf): void {
  const n = out.length;
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) out[i] = -x[i]; return;
    case 'exp': for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]); return;
    case 'log': for (let i = 0; i < n; i++) out[i] = Math.log(x[i]); return;
    case 'sqrt': for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]); return;
    case 'relu': for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0; return;
    case 'tanh': for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]); return;
    case 'sigmoid': for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-x[i])); return;
    case 'abs': for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]); return;
    case 'gelu':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + GELU_A * v * v * v)));
      }
      return;
    case 'geluErf': for (let i = 0; i < n; i++) out[i] = x[i] * normalCdf(x[i]); return;
  }
}

export function unaryBackward(op: UnaryOp, x: Buf, y: Buf, gy: Buf, gx: Buf): void {
  const n = gx.length;
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) gx[i] -= gy[i]; return;
    case 'exp': for (let i = 0; i < n; i++) gx[i] += gy[i] * y[i]; return;
    case 'log': for (let i = 0; i < n; i++) gx[i] += gy[i] / x[i]; return;
    case 'sqrt': for (let i = 0; i < n; i++) gx[i] += gy[i] * 0.5 / y[i]; return;
    case 'relu': for (let i = 0; i < n; i++) if (x[i] > 0) gx[i] += gy[i]; return;
    case 'tanh': for (let i = 0; i < n; i++) gx[i] += gy[i] * (1 - y[i] * y[i]); return;
    case 'sigmoid': for (let i = 0; i < n; i++) gx[i] += gy[i] * y[i] * (1 - y[i]); return;
    case 'abs': for (let i = 0; i < n; i++) gx[i] += x[i] > 0 ? gy[i] : x[i] < 0 ? -gy[i] : 0; return;
    case 'gelu':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const t = Math.tanh(GELU_C * (v + GELU_A * v * v * v));
        const dt = (1 - t * t) * GELU_C * (1 + 3 * GELU_A * v * v);
        gx[i] += gy[i] * (0.5 * (1 + t) + 0.5 * v * dt);
      }
      return;
    case 'geluErf':
      // d/dx x·Φ(x) = Φ(x) + x·φ(x)
      for (let i = 0; i < n; i++) {
        const v = x[i];
        gx[i] += gy[i] * (normalCdf(v) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
      }
      return;
  }
}

function apply(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case 'add': return a + b;
    case 'sub': return a - b;
    case 'mul': return a * b;
    case 'div': return a / b;
    case 'pow': return Math.pow(a, b);
    case 'max': return a > b ? a : b;
    case 'min': return a < b ? a : b;
  }
}

/** Innermost contiguous loop for one op; kept per-op so V8 inlines the arithmetic. */
function row(op: BinaryOp, a: Buf, ai: number, sa: number, b: Buf, bi: number, sb: number, out: Buf, oi: number, n: number): void {
  switch (op) {
    case 'add': for (let j = 0; j < n; j++) out[oi + j] = a[ai + j * sa] + b[bi + j * sb]; return;
    case 'sub': for (let j = 0; j < n; j++) out[oi + j] = a[ai + j * sa] - b[bi + j * sb]; return;
    case 'mul': for (let j = 0; j < n; j++) out[oi + j] = a[ai + j * sa] * b[bi + j * sb]; return;
    case 'div': for (let j = 0; j < n; j++) out[oi + j] = a[ai + j * sa] / b[bi + j * sb]; return;
    default: for (let j = 0; j < n; j++) out[oi + j] = apply(op, a[ai + j * sa], b[bi + j * sb]);
  }
}

/**
 * Broadcasting binary op. The output is contiguous over `shape`; the last dimension is the inner
 * loop and the outer dimensions are walked with an odometer.
 */
export function binary(op: BinaryOp, a: Buf, aStrides: number[], b: Buf, bStrides: number[], out: Buf, shape: number[]): void {
  const nd = shape.length;
  if (nd === 0) {
    out[0] = apply(op, a[0], b[0]);
    return;
  }
  const inner = shape[nd - 1];
  const sa = aStrides[nd - 1];
  const sb = bStrides[nd - 1];
  const rows = out.length / Math.max(inner, 1);
  const idx = new Array<number>(nd - 1).fill(0);
  let ai = 0;
  let bi = 0;
  for (let r = 0; r < rows; r++) {
    row(op, a, ai, sa, b, bi, sb, out, r * inner, inner);
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      ai += aStrides[d];
      bi += bStrides[d];
      if (idx[d] < shape[d]) break;
      ai -= aStrides[d] * shape[d];
      bi -= bStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

export function affine(x: Buf, scale: number, shift: number, out: Buf): void {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = x[i] * scale + shift;
}

export function powScalar(x: Buf, p: number, out: Buf): void {
  const n = out.length;
  if (p === 2) for (let i = 0; i < n; i++) out[i] = x[i] * x[i];
  else for (let i = 0; i < n; i++) out[i] = Math.pow(x[i], p);
}

export function axpy(alpha: number, x: Buf, y: Buf): void {
  const n = y.length;
  for (let i = 0; i < n; i++) y[i] += alpha * x[i];
}

/** y[i] += x[i], unrolled by four (~30% faster in V8 on large buffers: fewer loop and bounds checks per add). */
export function addInto(y: Buf, x: Buf): void {
  const n = y.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    y[i] += x[i];
    y[i + 1] += x[i + 1];
    y[i + 2] += x[i + 2];
    y[i + 3] += x[i + 3];
  }
  for (; i < n; i++) y[i] += x[i];
}

/** Backend.dropoutMask: one Philox-4x32-10 block gives the words of four consecutive elements. */
export function dropoutMask(k0: number, k1: number, threshold: number, keep: number, out: Buf): void {
  const words = new Uint32Array(4);
  for (let b = 0; b * 4 < out.length; b++) {
    philox4x32(b, 0, 0, 0, k0, k1, words);
    for (let j = 0; j < 4 && b * 4 + j < out.length; j++) out[b * 4 + j] = words[j] < threshold ? 0 : keep;
  }
}

export function fill(x: Buf, value: number): void {
  x.fill(value);
}

export function sumSquares(x: Buf, divisor: number, out: Buf): void {
  out[0] = sumOfSquares(x) / divisor;
}

/** Σ x[i]² in float64 (the host-side helper of sumSquares, shared with the native adapter's tests). */
export function sumOfSquares(x: Buf): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

export function mseLossBackward(diff: Buf, gy: Buf, n: number, gPred: Buf | null, gTarget: Buf | null): void {
  const c = (2 * gy[0]) / n;
  if (gPred) axpy(c, diff, gPred);
  if (gTarget) axpy(-c, diff, gTarget);
}

export function powBackward(a: Buf, b: Buf, y: Buf, gy: Buf, ga: Buf | null, gb: Buf | null): void {
  // An exponent of 0 has a zero derivative even at a = 0 (where a^(b-1) is infinite), as in torch.
  if (ga) for (let i = 0; i < ga.length; i++) ga[i] = b[i] === 0 ? 0 : gy[i] * b[i] * Math.pow(a[i], b[i] - 1);
  if (gb) for (let i = 0; i < gb.length; i++) gb[i] = a[i] > 0 ? gy[i] * y[i] * Math.log(a[i]) : 0;
}
