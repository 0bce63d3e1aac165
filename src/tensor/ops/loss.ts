import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sameShape } from '../shape.js';
import { Tensor, allocBuf } from '../tensor.js';

/**
 * Fused softmax + cross-entropy, mean over rows (label -1 rows are ignored). logits are
 * [..., classes]; labels hold one class index per row.
 */
export function crossEntropy(logits: Tensor, labels: Int32Array): Tensor {
  const cols = logits.shape[logits.ndim - 1];
  const rows = logits.size / cols;
  if (labels.length !== rows) {
    throw new ShapeError('crossEntropy', `expected ${rows} labels, got ${labels.length}`, [logits.shape, [labels.length]]);
  }
  for (let i = 0; i < rows; i++) {
    if (labels[i] >= cols || labels[i] < -1) throw new Error(`crossEntropy: label ${labels[i]} at row ${i} is outside [0, ${cols})`);
  }
  const k = kernelsFor(logits.data);
  const probs = allocBuf(logits.dtype, logits.size);
  const loss = k.softmaxCrossEntropy(logits.data, labels, rows, cols, probs);
  const out = Tensor.full([], loss, logits.dtype);
  let counted = 0;
  for (let i = 0; i < rows; i++) if (labels[i] >= 0) counted++;
  return record(out, 'crossEntropy', [logits], (gy) => {
    if (counted > 0) k.softmaxCrossEntropyBackward(probs, labels, rows, cols, gy[0] / counted, logits.ensureGrad());
  });
}

/** Mean squared error over all elements. */
export function mseLoss(pred: Tensor, target: Tensor): Tensor {
  if (!sameShape(pred.shape, target.shape)) throw new ShapeError('mseLoss', 'prediction and target shapes differ', [pred.shape, target.shape]);
  const k = kernelsFor(pred.data);
  const diff = allocBuf(pred.dtype, pred.size);
  k.binary('sub', pred.data, [1], target.data, [1], diff, [pred.size]);
  const out = Tensor.full([], k.sumSquares(diff) / pred.size, pred.dtype);
  return record(out, 'mseLoss', [pred, target], (gy) => {
    const c = (2 * gy[0]) / pred.size;
    if (pred.requiresGrad) k.axpy(c, diff, pred.ensureGrad());
    if (target.requiresGrad) k.axpy(-c, diff, target.ensureGrad());
  });
}
