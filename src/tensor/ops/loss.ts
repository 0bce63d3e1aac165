import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sameShape } from '../shape.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';
import { giveBack } from '../buffer_pool.js';
import { mayRelease, takeValues } from '../handover.js';
import { mappedMemory } from '../boundary/host_values.js';
import { hostIndexValues, indexCount, indexStorage, type Indices } from './indices.js';

/**
 * Fused softmax + cross-entropy, mean over rows (label -1 rows are ignored). logits are
 * [..., classes]; labels hold one class index per row: an int32 tensor on the logits' device, or
 * host values. The mean's divisor is the number of rows not ignored: counted here where the host
 * reads the labels (host values, or a tensor in the cpu's memory), and given as `scored` by a
 * caller whose labels live on a GPU (it counted them on the host before they went there:
 * train/loop/objective.ts). Labels the host cannot read go unchecked: the GPU's bounds-checked
 * buffer access keeps a bad one from reaching other memory.
 */
export function crossEntropy(logits: Tensor, labels: Indices, scored?: number): Tensor {
  const cols = logits.shape[logits.ndim - 1];
  const rows = logits.size / cols;
  const given = indexCount(labels);
  if (given !== rows) {
    throw new ShapeError('crossEntropy', `expected ${rows} labels, got ${given}`, [logits.shape, [given]]);
  }
  const counted = scoredRows(labels, cols, scored);
  const labelBuf = indexStorage('crossEntropy', labels, logits.device).buffer;
  const k = kernelsFor(logits);
  // The softmax overwrites every element. It stores probs / counted: the mean's factor rides along
  // the softmax's normalising multiply, so the usual backward (gy = 1) needs no pass over probs.
  // Logits handed over (lastUse: the model's output, which the training step reads no further)
  // whose maker does not read them back (a linear head) are dead once the probabilities exist: in
  // memory the host addresses (the host backends' kernels may alias their operands) the softmax
  // writes them over the logits, so a step holds one logits-sized buffer (103 MB on GPT-2 124M at
  // 512 tokens) instead of two. (A GPU kernel may not read and write one buffer through two bindings.)
  const inPlace = mappedMemory(logits.storage) !== undefined && mayRelease(logits);
  const probs = inPlace ? takeValues(logits, 'crossEntropy') : allocUninit(logits.dtype, logits.size, logits.device);
  // The loss stays on the device until someone reads it (item(), a metric).
  const out = new Tensor(allocUninit(logits.dtype, 1, logits.device), []);
  k.softmaxCrossEntropy(inPlace ? probs.buffer : logits.buffer, labelBuf, rows, cols, probs.buffer, counted > 0 ? 1 / counted : 1, out.buffer);
  return record(out, 'crossEntropy', [logits], (gy) => {
    if (counted === 0) return giveBack(probs);
    // An intermediate's first gradient: turn probs into it in place (no logits-sized buffer to
    // allocate, zero and add into). Leaves and already-started gradients accumulate as usual.
    if (logits.gradFn && !logits.grad) {
      k.crossEntropyGradientInPlace(probs.buffer, labelBuf, rows, cols, gy, counted);
      logits.grad = probs;
      return;
    }
    k.crossEntropyGradientInPlace(probs.buffer, labelBuf, rows, cols, gy, counted);
    k.axpy(1, probs.buffer, logits.ensureGrad());
    giveBack(probs);
  });
}

/**
 * The rows whose label is not -1, counted on the host where it reads the labels (each checked to
 * lie in [0, cols) or be -1); else the caller's `scored`, which labels on a GPU need.
 */
function scoredRows(labels: Indices, cols: number, scored: number | undefined): number {
  const host = hostIndexValues(labels);
  if (!host) {
    if (scored === undefined) throw new Error(`crossEntropy: labels on device "${(labels as Tensor).device}" cannot be counted on the host: pass the number of scored rows (labels other than -1)`);
    return scored;
  }
  let counted = 0;
  for (let i = 0; i < host.length; i++) {
    if (host[i] >= cols || host[i] < -1) throw new Error(`crossEntropy: label ${host[i]} at row ${i} is outside [0, ${cols})`);
    if (host[i] >= 0) counted++;
  }
  if (scored !== undefined && scored !== counted) throw new Error(`crossEntropy: ${scored} scored rows given, but the labels score ${counted}`);
  return counted;
}

/** Mean squared error over all elements. */
export function mseLoss(pred: Tensor, target: Tensor): Tensor {
  if (!sameShape(pred.shape, target.shape)) throw new ShapeError('mseLoss', 'prediction and target shapes differ', [pred.shape, target.shape]);
  const k = kernelsFor(pred);
  const diff = allocStorage(pred.dtype, pred.size, pred.device).buffer;
  k.binary('sub', pred.buffer, [1], target.buffer, [1], diff, [pred.size]);
  const out = new Tensor(allocUninit(pred.dtype, 1, pred.device), []);
  k.sumSquares(diff, pred.size, out.buffer);
  return record(out, 'mseLoss', [pred, target], (gy) => {
    k.mseLossBackward(diff, gy, pred.size, pred.requiresGrad ? pred.ensureGrad() : null, target.requiresGrad ? target.ensureGrad() : null);
  });
}
