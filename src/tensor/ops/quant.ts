/**
 * Ops on quantized weights (quant/formats.ts): a frozen [out, in] matrix held in its format's blocks,
 * never as a dense copy beside them. `linear` and `embedding` send a quantized weight here; the
 * kernels come from the registry under the weight's format (dispatch.ts quantKernelsFor), so no op
 * branches on the format. Only the input's gradient flows: the weight is frozen (a LoRA adapter
 * beside it is what trains, QLoRA's way).
 */
import { isGradEnabled, record } from '../autograd.js';
import { kernelsFor, quantKernelsFor } from '../dispatch.js';
import { type QuantType, isQuantType, quantFormat } from '../quant/formats.js';
import { ShapeError, sizeOf } from '../shape.js';
import { lowersToBf16 } from './autocast.js';
import type { DeviceBuffer } from '../storage.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';

/** A float32 [rows, cols] tensor's values in `type`'s blocks: a new, frozen tensor of that dtype. */
export function quantize(t: Tensor, type: QuantType): Tensor {
  if (t.dtype !== 'float32') throw new Error(`quantize: a ${t.dtype} tensor; quantize takes float32 values`);
  const [rows, cols] = matrixShape('quantize', t);
  const block = quantFormat(type).blockWeights;
  if (cols % block !== 0) {
    throw new ShapeError('quantize', `a row of ${cols} values is not whole ${type} blocks (${block} weights each)`, [t.shape]);
  }
  const out = new Tensor(allocStorage(type, t.size, t.device), t.shape);
  quantKernelsFor(out).quantQuantize(t.buffer, rows, cols, out.buffer);
  return out;
}

/** A quantized [rows, cols] tensor's values as float32 (gguf-py's dequantization, bit for bit). */
export function dequantize(w: Tensor): Tensor {
  const [rows, cols] = quantizedMatrix('dequantize', w);
  const out = new Tensor(allocUninit('float32', w.size, w.device), w.shape);
  quantKernelsFor(w).quantDequantize(w.buffer, cols, 0, rows, out.buffer);
  return out;
}

let exactDepth = 0;

/**
 * Runs fn with every quantized product exact, gradients recorded or not: a checkpointed layer's
 * forward (nn/activation_checkpointing.ts), whose values the recorded recomputation must meet.
 */
export function exactQuantProducts<T>(fn: () => T): T {
  exactDepth++;
  try {
    return fn();
  } finally {
    exactDepth--;
  }
}

/**
 * y = x Wᵀ + b for a quantized W [out, in]; x float32 [..., in]. Where gradients are recorded (a
 * training step: LoRA adapters train over W) the product is exact at every size; only inference
 * (noGrad) lets a few rows run on quantized activations, as llama.cpp's decode does. Under a bf16
 * step the exact products take autocast's operands (x and W's dequantized values in bf16, the bf16
 * GEMM): QLoRA's step is then a bf16 LoRA step on the dequantized base, as bitsandbytes' is.
 */
export function quantizedLinear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const [outF, inF] = quantizedMatrix('linear', weight);
  if (x.dtype !== 'float32') throw new Error(`linear: a ${weight.dtype} weight multiplies float32 inputs, not ${x.dtype}`);
  const M = x.size / inF;
  const out = new Tensor(allocUninit('float32', M * outF, x.device), [...x.shape.slice(0, -1), outF]);
  const q = quantKernelsFor(weight);
  const bf16 = lowersToBf16('linear');
  q.quantLinear(weight.buffer, x.buffer, M, outF, inF, out.buffer, bias?.buffer ?? null, isGradEnabled() || exactDepth > 0, bf16);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'linear', inputs, (gy) => {
    if (x.requiresGrad) q.quantLinearInputGrad(weight.buffer, gy, M, outF, inF, x.ensureGrad(), bf16);
    if (bias?.requiresGrad) biasGrad(gy, M, outF, bias);
  }, false);
}

/** Rows of a quantized table [vocab, dim] that the ids (an int32 buffer of `count`, checked by the caller) name. */
export function quantizedEmbedding(table: Tensor, ids: DeviceBuffer, idsShape: readonly number[]): Tensor {
  const [, dim] = quantizedMatrix('embedding', table);
  const shape = [...idsShape, dim];
  const out = new Tensor(allocUninit('float32', sizeOf(shape), table.device), shape);
  quantKernelsFor(table).quantEmbedding(table.buffer, ids, dim, out.buffer);
  return out;
}

function biasGrad(gy: DeviceBuffer, M: number, outF: number, bias: Tensor): void {
  const k = kernelsFor({ device: bias.device, dtype: 'float32' });
  const gb = allocStorage('float32', outF, bias.device).buffer;
  k.reduceSum(gy, 1, M, outF, gb);
  k.axpy(1, gb, bias.ensureGrad());
}

function matrixShape(op: string, t: Tensor): [number, number] {
  if (t.ndim !== 2) throw new ShapeError(op, 'expected a matrix [rows, cols]', [t.shape]);
  return [t.shape[0], t.shape[1]];
}

/** A quantized weight's [rows, cols], refused when it is not quantized or asks for a gradient. */
function quantizedMatrix(op: string, w: Tensor): [number, number] {
  if (!isQuantType(w.dtype)) throw new Error(`${op}: a ${w.dtype} tensor is not quantized`);
  if (w.requiresGrad) {
    throw new Error(`${op}: ${w.name || 'the weight'} is ${w.dtype}, which is frozen: its gradient is not computed (train a LoRA adapter beside it)`);
  }
  return matrixShape(op, w);
}
