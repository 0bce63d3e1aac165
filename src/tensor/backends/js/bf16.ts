import type { Buf, Conv2dGeometry } from '../../backend.js';
import { conv2d, conv2dBackward } from './conv.js';
import { gemm } from './gemm.js';

/**
 * bfloat16 kernels in plain TypeScript, the reference the native ones are tested against. Rounding
 * is the one every backend uses (backend.ts): float32 to the nearest bfloat16, ties to even; NaN
 * stays a quiet NaN; a float32 denormal becomes a signed zero, as AVX512-BF16's vcvtneps2bf16 (the
 * instruction oneDNN's reorders use where the CPU has it) treats them. The compute kernels widen
 * their bf16 operands to float32 (exact) and run the float32 kernels, so products are exact and
 * sums are float32-or-better: the same arithmetic as oneDNN's bf16 primitives up to summation order.
 */

/** The float32 bit pattern of x as an unsigned 32-bit integer. */
function bitsOf(x: Buf): Uint32Array {
  if (!(x instanceof Float32Array)) throw new TypeError('toBf16: x must be a Float32Array');
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** bf16 bits of one float32 bit pattern (see the rule above). */
export function bf16Bits(u: number): number {
  const abs = u & 0x7fffffff;
  if (abs > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff; // NaN: keep it quiet
  if (abs < 0x00800000) return (u >>> 16) & 0x8000; // zero or denormal: signed zero
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function toBf16(x: Buf, out: Buf): void {
  const u = bitsOf(x);
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = bf16Bits(u[i]);
}

export function bf16View(x: Buf, offset: number, length: number): Buf {
  if (!(x instanceof Float32Array)) throw new TypeError('bf16View: x must be a Float32Array');
  if (offset < 0 || length < 0 || 2 * (offset + length) > 4 * x.length) throw new RangeError(`bf16View: [${offset}, ${offset + length}) exceeds ${2 * x.length} bf16 elements`);
  return new Uint16Array(x.buffer, x.byteOffset + 2 * offset, length);
}

export function fromBf16(x: Buf, out: Buf): void {
  if (!(out instanceof Float32Array)) throw new TypeError('fromBf16: out must be a Float32Array');
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const n = out.length;
  for (let i = 0; i < n; i++) u[i] = x[i] << 16;
}

/** A bfloat16 buffer widened to float32. */
function widen(x: Buf): Float32Array {
  if (!(x instanceof Uint16Array)) throw new TypeError('bf16 kernel: operand must be a bfloat16 (Uint16Array) buffer');
  const out = new Float32Array(x.length);
  fromBf16(x, out);
  return out;
}

/** A float32 buffer rounded through bfloat16 and widened back. */
export function rounded(x: Buf): Float32Array {
  const b = new Uint16Array(x.length);
  toBf16(x, b);
  return widen(b);
}

export function gemmBf16(
  transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Buf, strideA: number, B: Buf, strideB: number, beta: number, C: Buf, strideC: number,
  batch: number, bias: Buf | null = null,
): void {
  gemm(transA, transB, M, N, K, alpha, widen(A), strideA, widen(B), strideB, beta, C, strideC, batch, bias);
}

export function conv2dBf16(g: Conv2dGeometry, x: Buf, w: Buf, bias: Buf | null, y: Buf): void {
  conv2d(g, widen(x), widen(w), bias, y);
}

export function conv2dBackwardBf16(
  g: Conv2dGeometry, x: Buf, w: Buf, gy: Buf, gx: Buf | null, gw: Buf, gBias: Buf | null, setGx = false,
): void {
  conv2dBackward(g, widen(x), widen(w), rounded(gy), gx, gw, gBias, setGx);
}

/** Row r of each [rows, cols] slice: softmax over columns 0..r, zeros after. */
export function softmaxCausal(x: Buf, slices: number, rows: number, cols: number, out: Buf): void {
  for (let s = 0; s < slices; s++) {
    for (let r = 0; r < rows; r++) {
      const off = (s * rows + r) * cols;
      const seen = Math.min(r + 1, cols);
      let m = -Infinity;
      for (let j = 0; j < seen; j++) if (x[off + j] > m) m = x[off + j];
      let sum = 0;
      for (let j = 0; j < seen; j++) {
        const e = Math.exp(x[off + j] - m);
        out[off + j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let j = 0; j < seen; j++) out[off + j] *= inv;
      out.fill(0, off + seen, off + cols);
    }
  }
}
