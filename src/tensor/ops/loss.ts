import type { Backend, Buf } from '../backend.js';
import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sameShape } from '../shape.js';
import { Tensor, allocBuf, allocUninit } from '../tensor.js';
import { giveBack } from '../buffer_pool.js';

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
  let counted = 0;
  for (let i = 0; i < rows; i++) if (labels[i] >= 0) counted++;
  // The softmax overwrites every element. It stores probs / counted: the mean's factor rides along
  // the softmax's normalising multiply, so the usual backward (gy = 1) needs no pass over probs.
  const probs = allocUninit(logits.dtype, logits.size);
  const loss = k.softmaxCrossEntropy(logits.data, labels, rows, cols, probs, counted > 0 ? 1 / counted : 1);
  const out = Tensor.full([], loss, logits.dtype);
  return record(out, 'crossEntropy', [logits], (gy) => {
    if (counted === 0) return giveBack(probs);
    // An intermediate's first gradient: turn probs into it in place (no logits-sized buffer to
    // allocate, zero and add into). Leaves and already-started gradients accumulate as usual.
    if (logits.gradFn && !logits.grad) {
      gradientInPlace(k, probs, labels, rows, cols, gy[0], counted);
      logits.grad = probs;
      return;
    }
    gradientInPlace(k, probs, labels, rows, cols, gy[0], counted);
    k.axpy(1, probs, logits.ensureGrad());
    giveBack(probs);
  });
}

/**
 * scaledProbs (probs / counted) := g · scaledProbs − (g / counted) · onehot(labels), rows labelled −1
 * zeroed: the gradient of g · mean cross-entropy. With g = 1, the common case, only the labelled
 * entries are touched.
 */
function gradientInPlace(k: Backend, scaledProbs: Buf, labels: Int32Array, rows: number, cols: number, g: number, counted: number): void {
  if (g !== 1) k.affine(scaledProbs, g, 0, scaledProbs);
  // The native kernels take scale as a float32; the js ones keep the double.
  const s = k.name === 'native' ? Math.fround(g / counted) : g / counted;
  for (let r = 0; r < rows; r++) {
    if (labels[r] >= 0) scaledProbs[r * cols + labels[r]] -= s;
    else scaledProbs.fill(0, r * cols, (r + 1) * cols);
  }
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
