import type { Backend } from '../backend.js';
import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sameShape, sizeOf } from '../shape.js';
import type { Device, DeviceBuffer } from '../storage.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';
import { bf16Operand, bf16Tuning, computesInBf16, gradTarget, release, roundedStorage, type GradTarget } from './bf16.js';

/**
 * Matrix product over the last two dimensions. Supported forms:
 *  - [..., M, K] @ [K, N]: the leading dimensions fold into M (one GEMM).
 *  - [M, K] @ [..., K, N]: A is shared across B's batch.
 *  - [..., M, K] @ [..., K, N] with equal batch dimensions.
 * Gradients are accumulated by the GEMM itself (beta = 1) straight into the inputs' grad buffers.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError('matmul', 'operands must be at least 2-d', [a.shape, b.shape]);
  const K = a.shape[a.ndim - 1];
  if (b.shape[b.ndim - 2] !== K) throw new ShapeError('matmul', 'inner dimensions differ', [a.shape, b.shape]);
  if (a.ndim > 2 && b.ndim > 2 && !sameShape(a.shape.slice(0, -2), b.shape.slice(0, -2))) {
    throw new ShapeError('matmul', 'batch dimensions differ', [a.shape, b.shape]);
  }
  if (computesInBf16(a, b)) return matmulBf16(a, b);
  if (b.ndim === 2) return matmulFolded(a, b);
  if (a.ndim === 2) return matmulSharedA(a, b);
  return matmulBatched(a, b);
}

/** An output every path below overwrites whole (GEMM with beta 0). */
function outputOf(shape: number[], like: Tensor): Tensor {
  return new Tensor(allocUninit(like.dtype, sizeOf(shape), like.device), shape);
}

function matmulFolded(a: Tensor, b: Tensor): Tensor {
  const K = a.shape[a.ndim - 1];
  const N = b.shape[1];
  const M = a.size / K;
  const out = outputOf([...a.shape.slice(0, -1), N], a);
  const k = kernelsFor(a);
  k.gemm(false, false, M, N, K, 1, a.buffer, 0, b.buffer, 0, 0, out.buffer, 0, 1);
  return record(out, 'matmul', [a, b], (gy) => {
    if (a.requiresGrad) k.gemm(false, true, M, K, N, 1, gy, 0, b.buffer, 0, 1, a.ensureGrad(), 0, 1);
    if (b.requiresGrad) k.gemm(true, false, K, N, M, 1, a.buffer, 0, gy, 0, 1, b.ensureGrad(), 0, 1);
  });
}

function matmulSharedA(a: Tensor, b: Tensor): Tensor {
  const [M, K] = a.shape;
  const N = b.shape[b.ndim - 1];
  const batch = sizeOf(b.shape.slice(0, -2));
  const out = outputOf([...b.shape.slice(0, -2), M, N], a);
  const k = kernelsFor(a);
  k.gemm(false, false, M, N, K, 1, a.buffer, 0, b.buffer, K * N, 0, out.buffer, M * N, batch);
  return record(out, 'matmul', [a, b], (gy) => {
    if (a.requiresGrad) {
      const ga = a.ensureGrad();
      // One GEMM per batch entry: every entry adds into the same shared gradient.
      for (let i = 0; i < batch; i++) {
        k.gemm(false, true, M, K, N, 1, k.subBuffer(gy, i * M * N, M * N), 0, k.subBuffer(b.buffer, i * K * N, K * N), 0, 1, ga, 0, 1);
      }
    }
    if (b.requiresGrad) k.gemm(true, false, K, N, M, 1, a.buffer, 0, gy, M * N, 1, b.ensureGrad(), K * N, batch);
  });
}

function matmulBatched(a: Tensor, b: Tensor): Tensor {
  const M = a.shape[a.ndim - 2];
  const K = a.shape[a.ndim - 1];
  const N = b.shape[b.ndim - 1];
  const batch = sizeOf(a.shape.slice(0, -2));
  const out = outputOf([...a.shape.slice(0, -1), N], a);
  const k = kernelsFor(a);
  k.gemm(false, false, M, N, K, 1, a.buffer, M * K, b.buffer, K * N, 0, out.buffer, M * N, batch);
  return record(out, 'matmul', [a, b], (gy) => {
    if (a.requiresGrad) k.gemm(false, true, M, K, N, 1, gy, M * N, b.buffer, K * N, 1, a.ensureGrad(), M * K, batch);
    if (b.requiresGrad) k.gemm(true, false, K, N, M, 1, a.buffer, M * K, gy, M * N, 1, b.ensureGrad(), K * N, batch);
  });
}

/**
 * The three forms above under bf16 (docs/PRECISION.md): both operands rounded to bf16 (a weight
 * once per step), the product accumulated in float32 into a float32 output; the backward rounds
 * gy to bf16 once and runs both gradient GEMMs on the saved bf16 operands.
 */
function matmulBf16(a: Tensor, b: Tensor): Tensor {
  const M = a.shape[a.ndim - 2];
  const K = a.shape[a.ndim - 1];
  const N = b.shape[b.ndim - 1];
  const k = kernelsFor(a);
  const ao = bf16Operand(a);
  const bo = bf16Operand(b);
  // Strides per batch entry; the folded form is one GEMM over a's leading dimensions.
  const folded = b.ndim === 2;
  const rows = folded ? a.size / K : M;
  const batch = folded ? 1 : sizeOf((a.ndim === 2 ? b : a).shape.slice(0, -2));
  const sA = folded || a.ndim === 2 ? 0 : M * K;
  const sB = folded ? 0 : K * N;
  const outShape = folded ? [...a.shape.slice(0, -1), N] : a.ndim === 2 ? [...b.shape.slice(0, -2), M, N] : [...a.shape.slice(0, -1), N];
  const out = outputOf(outShape, a);
  k.gemmBf16(false, false, rows, N, K, 1, ao.forward, sA, bo.forward, sB, 0, out.buffer, rows * N, batch);
  ao.release();
  bo.release();
  return record(out, 'matmul', [a, b], (gy) => {
    const [as, bs] = [ao.backward(), bo.backward()];
    const [ab, bb] = [as.buffer, bs.buffer];
    const gys = roundedStorage(k, gy, out.size, out.device);
    const gyb = gys.buffer;
    if (a.requiresGrad) {
      const ga = gradTarget(a);
      if (sA === 0 && batch > 1) {
        // A shared across the batch: every entry adds into the same gradient, one GEMM each.
        for (let i = 0; i < batch; i++) {
          k.gemmBf16(false, true, M, K, N, 1, k.subBuffer(gyb, i * M * N, M * N), 0, k.subBuffer(bb, i * K * N, K * N), 0, i === 0 ? ga.beta : 1, ga.buffer, 0, 1);
        }
      } else {
        k.gemmBf16(false, true, rows, K, N, 1, gyb, rows * N, bb, sB, ga.beta, ga.buffer, sA, batch);
      }
    }
    if (b.requiresGrad) {
      // A b shared across a's batch (sB = 0 with batch > 1) gathers every entry's product into one gradient.
      const gb = sB === 0 && batch > 1 ? { buffer: b.ensureGrad(), beta: 1 as const } : gradTarget(b);
      k.gemmBf16(true, false, K, N, rows, 1, ab, sA, gyb, rows * N, gb.beta, gb.buffer, sB, batch);
    }
    release(gys);
    as.done();
    bs.done();
  });
}

/**
 * Fully connected layer, fused: y = x @ Wᵀ + b with W stored [out, in] (torch's layout), so no
 * transpose is ever materialised. x is [..., in].
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const inF = x.shape[x.ndim - 1];
  const outF = weight.shape[0];
  if (weight.ndim !== 2 || weight.shape[1] !== inF || (bias && (bias.ndim !== 1 || bias.size !== outF))) {
    throw new ShapeError('linear', 'expected x [..., in], weight [out, in], bias [out]', [x.shape, weight.shape, bias?.shape ?? []]);
  }
  if (computesInBf16(x, weight)) return linearBf16(x, weight, bias);
  const M = x.size / inF;
  const out = outputOf([...x.shape.slice(0, -1), outF], x);
  const k = kernelsFor(x);
  k.gemm(false, true, M, outF, inF, 1, x.buffer, 0, weight.buffer, 0, 0, out.buffer, 0, 1, bias?.buffer ?? null);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'linear', inputs, (gy) => {
    if (x.requiresGrad) k.gemm(false, false, M, inF, outF, 1, gy, 0, weight.buffer, 0, 1, x.ensureGrad(), 0, 1);
    if (weight.requiresGrad) k.gemm(true, false, outF, inF, M, 1, gy, 0, x.buffer, 0, 1, weight.ensureGrad(), 0, 1);
    if (bias?.requiresGrad) {
      const gb = allocStorage(x.dtype, outF, x.device).buffer;
      k.reduceSum(gy, 1, M, outF, gb);
      k.axpy(1, gb, bias.ensureGrad());
    }
  });
}

/** linear under bf16: x and the weight's once-per-step copy in bf16, the bias and output float32. */
function linearBf16(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const inF = x.shape[x.ndim - 1];
  const outF = weight.shape[0];
  const M = x.size / inF;
  const out = outputOf([...x.shape.slice(0, -1), outF], x);
  const k = kernelsFor(x);
  const xo = bf16Operand(x);
  const wo = bf16Operand(weight);
  k.gemmBf16(false, true, M, outF, inF, 1, xo.forward, 0, wo.forward, 0, 0, out.buffer, 0, 1, bias?.buffer ?? null);
  xo.release();
  wo.release();
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'linear', inputs, (gy) => {
    const [xs, ws] = [xo.backward(), wo.backward()];
    const [xb, wb] = [xs.buffer, ws.buffer];
    // (x and the weight one tensor: both products add into its one gradient.)
    const target = (t: Tensor): GradTarget => (x === weight ? { buffer: t.ensureGrad(), beta: 1 } : gradTarget(t));
    const gx = x.requiresGrad ? target(x) : null;
    const gw = weight.requiresGrad ? target(weight) : null;
    linearBackwardBf16(k, gy, xb, wb, gx, gw, M, inF, outF, out.device);
    xs.done();
    ws.done();
    if (bias?.requiresGrad) {
      const gb = allocStorage(x.dtype, outF, x.device).buffer;
      k.reduceSum(gy, 1, M, outF, gb);
      k.axpy(1, gb, bias.ensureGrad());
    }
  });
}

/**
 * The two gradient GEMMs of a bf16 linear, gy rounded to bf16 a block at a time: a vocabulary
 * head's gradient (tokens × 50257) would otherwise need a bf16 copy of it whole beside the float32
 * one. A block is either rows of gy (each block's gW product then sums over only those rows) or
 * columns (each block's gx product sums over only those output features); whichever keeps both
 * products deeper. Shallow products re-read and re-write their float32 output per block: GPT-2's
 * head in row blocks of 166 tokens ran its gW product at 200 GFLOP/s, in column blocks of 16384
 * features at 350 (bench:models --profile, avx512_bf16).
 */
function linearBackwardBf16(
  k: Backend, gy: DeviceBuffer, xb: DeviceBuffer, wb: DeviceBuffer, gx: GradTarget | null, gw: GradTarget | null,
  M: number, inF: number, outF: number, device: Device,
): void {
  const block = bf16Tuning.gyBlockElements;
  const rows = Math.max(1, Math.min(M, Math.floor(block / outF)));
  const cols = Math.max(1, Math.min(outF, Math.floor(block / M)));
  if (rows < M && Math.min(M, cols) > Math.min(rows, outF)) {
    for (let c0 = 0; c0 < outF; c0 += cols) {
      const n = Math.min(cols, outF - c0);
      const gys = allocUninit('bfloat16', M * n, device);
      k.toBf16Columns(k.subBuffer(gy, c0, (M - 1) * outF + n), outF, n, gys.buffer);
      // gx sums every block's product; each block writes its own rows of gW.
      if (gx) k.gemmBf16(false, false, M, inF, n, 1, gys.buffer, 0, k.subBuffer(wb, c0 * inF, n * inF), 0, c0 === 0 ? gx.beta : 1, gx.buffer, 0, 1);
      if (gw) k.gemmBf16(true, false, n, inF, M, 1, gys.buffer, 0, xb, 0, gw.beta, k.subBuffer(gw.buffer, c0 * inF, n * inF), 0, 1);
      release(gys);
    }
    return;
  }
  for (let r0 = 0; r0 < M; r0 += rows) {
    const n = Math.min(rows, M - r0);
    const gys = roundedStorage(k, k.subBuffer(gy, r0 * outF, n * outF), n * outF, device);
    // Each block writes its own rows of gx; gW sums every block's product.
    if (gx) k.gemmBf16(false, false, n, inF, outF, 1, gys.buffer, 0, wb, 0, gx.beta, k.subBuffer(gx.buffer, r0 * inF, n * inF), 0, 1);
    if (gw) k.gemmBf16(true, false, outF, inF, n, 1, gys.buffer, 0, k.subBuffer(xb, r0 * inF, n * inF), 0, r0 === 0 ? gw.beta : 1, gw.buffer, 0, 1);
    release(gys);
  }
}
