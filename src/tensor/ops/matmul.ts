import type { Backend } from '../backend.js';
import { record } from '../autograd.js';
import { releaseValues } from '../handover.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sameShape, sizeOf } from '../shape.js';
import type { Device, DeviceBuffer } from '../storage.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';
import { autocast, lowersToBf16 } from './autocast.js';
import { linearOverBf16Weight } from './linear_bf16_weight.js';
import { accumulated, bf16Operand, gradTarget, handsOver, roundInPlace, sameDtype, type GradTarget } from './bf16.js';
import { gradInput } from './cast.js';
import { packedLinear, packedLinearBackward } from './packed_weights.js';
import { quantizedLinear } from './quant.js';
import { isQuantType } from '../quant/formats.js';

/**
 * Matrix product over the last two dimensions. Supported forms:
 *  - [..., M, K] @ [K, N]: the leading dimensions fold into M (one GEMM).
 *  - [M, K] @ [..., K, N]: A is shared across B's batch.
 *  - [..., M, K] @ [..., K, N] with equal batch dimensions.
 * Gradients are accumulated by the GEMM itself (beta = 1) straight into the inputs' grad buffers.
 * bfloat16 operands (a bf16 step's autocast casts them) run gemm's bfloat16 entry into a float32
 * output.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError('matmul', 'operands must be at least 2-d', [a.shape, b.shape]);
  const K = a.shape[a.ndim - 1];
  if (b.shape[b.ndim - 2] !== K) throw new ShapeError('matmul', 'inner dimensions differ', [a.shape, b.shape]);
  if (a.ndim > 2 && b.ndim > 2 && !sameShape(a.shape.slice(0, -2), b.shape.slice(0, -2))) {
    throw new ShapeError('matmul', 'batch dimensions differ', [a.shape, b.shape]);
  }
  [a, b] = autocast('matmul', a, b);
  if (a.dtype === 'bfloat16' || b.dtype === 'bfloat16') return matmulBf16(a, b);
  if (b.ndim === 2) return matmulFolded(a, b);
  if (a.ndim === 2) return matmulSharedA(a, b);
  return matmulBatched(a, b);
}

/** An output every path below overwrites whole (GEMM with beta 0); a bfloat16 product's is float32. */
function outputOf(shape: number[], like: Tensor): Tensor {
  return new Tensor(allocUninit(accumulated(like), sizeOf(shape), like.device), shape);
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
 * The three forms above on bfloat16 operands (docs/PRECISION.md): the product accumulated in
 * float32 into a float32 output; the backward takes the operands again (bf16Operand), rounds gy to
 * bf16 (in its own memory) and runs both gradient GEMMs on them into the float32 gradients of the
 * casts' sources.
 */
function matmulBf16(aOperand: Tensor, bOperand: Tensor): Tensor {
  sameDtype('matmul', aOperand, bOperand);
  const [a, b] = [gradInput(aOperand), gradInput(bOperand)];
  const M = a.shape[a.ndim - 2];
  const K = a.shape[a.ndim - 1];
  const N = b.shape[b.ndim - 1];
  const k = kernelsFor({ device: a.device, dtype: 'float32' });
  const kb = kernelsFor(aOperand);
  const ao = bf16Operand(aOperand);
  const bo = bf16Operand(bOperand);
  // Strides per batch entry; the folded form is one GEMM over a's leading dimensions.
  const folded = b.ndim === 2;
  const rows = folded ? a.size / K : M;
  const batch = folded ? 1 : sizeOf((a.ndim === 2 ? b : a).shape.slice(0, -2));
  const sA = folded || a.ndim === 2 ? 0 : M * K;
  const sB = folded ? 0 : K * N;
  const outShape = folded ? [...a.shape.slice(0, -1), N] : a.ndim === 2 ? [...b.shape.slice(0, -2), M, N] : [...a.shape.slice(0, -1), N];
  const out = outputOf(outShape, aOperand);
  kb.gemm(false, false, rows, N, K, 1, ao.forward, sA, bo.forward, sB, 0, out.buffer, rows * N, batch);
  ao.release();
  bo.release();
  return record(out, 'matmul', [a, b], (gy) => {
    const [as, bs] = [ao.backward(), bo.backward()];
    const [ab, bb] = [as.buffer, bs.buffer];
    const gyb = roundInPlace(k, gy, out.size, out.device);
    if (a.requiresGrad) {
      const ga = gradTarget(a);
      if (sA === 0 && batch > 1) {
        // A shared across the batch: every entry adds into the same gradient, one GEMM each.
        for (let i = 0; i < batch; i++) {
          kb.gemm(false, true, M, K, N, 1, k.subBuffer(gyb, i * M * N, M * N), 0, k.subBuffer(bb, i * K * N, K * N), 0, i === 0 ? ga.beta : 1, ga.buffer, 0, 1);
        }
      } else {
        kb.gemm(false, true, rows, K, N, 1, gyb, rows * N, bb, sB, ga.beta, ga.buffer, sA, batch);
      }
    }
    if (b.requiresGrad) {
      // A b shared across a's batch (sB = 0 with batch > 1) gathers every entry's product into one gradient.
      const gb = sB === 0 && batch > 1 ? { buffer: b.ensureGrad(), beta: 1 as const } : gradTarget(b);
      kb.gemm(true, false, K, N, rows, 1, ab, sA, gyb, rows * N, gb.beta, gb.buffer, sB, batch);
    }
    as.done();
    bs.done();
  });
}

/**
 * Fully connected layer, fused: y = x @ Wᵀ + b with W stored [out, in] (torch's layout), so no
 * transpose is ever materialised. x is [..., in]. bfloat16 x and weight (a bf16 step's autocast
 * casts them) run gemm's bfloat16 entry; the bias and the output stay float32.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const inF = x.shape[x.ndim - 1];
  const outF = weight.shape[0];
  if (weight.ndim !== 2 || weight.shape[1] !== inF || (bias && (bias.ndim !== 1 || bias.size !== outF))) {
    throw new ShapeError('linear', 'expected x [..., in], weight [out, in], bias [out]', [x.shape, weight.shape, bias?.shape ?? []]);
  }
  if (isQuantType(weight.dtype)) return quantizedLinear(x, weight, bias);
  // A bf16-held weight in a float32 step (a BF16 folder generating in fp32): widened tile by tile.
  if (weight.dtype === 'bfloat16' && x.dtype === 'float32' && !lowersToBf16('linear')) return linearOverBf16Weight(x, weight, bias);
  // The output is made before the casts, as it always was (the step's recycler sees the same order).
  const out = outputOf([...x.shape.slice(0, -1), outF], x);
  const [xOperand, wOperand] = autocast('linear', x, weight);
  if (xOperand.dtype === 'bfloat16' || wOperand.dtype === 'bfloat16') return linearBf16(xOperand, wOperand, bias, out);
  const M = x.size / inF;
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
  }, false); // reads gy, x and the weight, never its output (handover.ts may release it)
}

/** linear on bfloat16 x and weight: the bias and output float32. */
function linearBf16(xOperand: Tensor, wOperand: Tensor, bias: Tensor | null, out: Tensor): Tensor {
  sameDtype('linear', xOperand, wOperand);
  const [x, weight] = [gradInput(xOperand), gradInput(wOperand)];
  const inF = x.shape[x.ndim - 1];
  const outF = weight.shape[0];
  const M = x.size / inF;
  const k = kernelsFor({ device: x.device, dtype: 'float32' });
  const kb = kernelsFor(xOperand);
  // x handed over (handover.ts): its bf16 cast is what the backward keeps, its float32 values go.
  const handedOver = handsOver(xOperand);
  const xo = bf16Operand(xOperand, handedOver);
  const wo = bf16Operand(wOperand);
  // A weight that does not change (packed_weights.ts) multiplies from its packed copy.
  if (!packedLinear(xo.forward, wOperand, M, out.buffer, bias?.buffer ?? null)) {
    kb.gemm(false, true, M, outF, inF, 1, xo.forward, 0, wo.forward, 0, 0, out.buffer, 0, 1, bias?.buffer ?? null);
  }
  xo.release();
  wo.release();
  if (handedOver) releaseValues(x, 'linear');
  // dW alone reads x and dx alone the weight: a frozen weight (LoRA's base) keeps no cast of x for
  // the backward, nor rounds x again there (the same numbers, less memory and work).
  const [needX, needW] = [weight.requiresGrad, x.requiresGrad];
  if (!needX && xo.kept) xo.backward().done();
  if (!needW && wo.kept) wo.backward().done();
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'linear', inputs, (gy) => {
    // The bias gradient sums the float32 gy, before gy is rounded to bf16 in its own memory.
    if (bias?.requiresGrad) {
      const gb = allocStorage('float32', outF, x.device).buffer;
      k.reduceSum(gy, 1, M, outF, gb);
      k.axpy(1, gb, bias.ensureGrad());
    }
    const gyb = roundInPlace(k, gy, out.size, out.device);
    // (x and the weight one tensor: both products add into its one gradient.)
    const target = (t: Tensor): GradTarget => (x === weight ? { buffer: t.ensureGrad(), beta: 1 } : gradTarget(t));
    const [xs, ws] = [needX ? xo.backward() : null, needW ? wo.backward() : null];
    if (ws) {
      const gx = target(x);
      // A frozen vocabulary head multiplies from its dY·W packed copy (packed_weights.ts).
      if (!packedLinearBackward(gyb, wOperand, M, gx.buffer, gx.beta)) kb.gemm(false, false, M, inF, outF, 1, gyb, 0, ws.buffer, 0, gx.beta, gx.buffer, 0, 1);
    }
    if (xs) {
      const gw = target(weight);
      kb.gemm(true, false, outF, inF, M, 1, gyb, 0, xs.buffer, 0, gw.beta, gw.buffer, 0, 1);
    }
    xs?.done();
    ws?.done();
  }, false); // never reads its output (handover.ts may release it)
}
