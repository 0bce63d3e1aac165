import type { Buf } from '../../backend.js';
import { affine } from './elementwise.js';

/** Row maximum, the shift that keeps exp() from overflowing. */
function rowMax(x: Buf, off: number, cols: number): number {
  let m = -Infinity;
  for (let j = 0; j < cols; j++) if (x[off + j] > m) m = x[off + j];
  return m;
}

export function softmax(x: Buf, rows: number, cols: number, out: Buf): void {
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const m = rowMax(x, off, cols);
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(x[off + j] - m);
      out[off + j] = e;
      s += e;
    }
    const inv = 1 / s;
    for (let j = 0; j < cols; j++) out[off + j] *= inv;
  }
}

export function softmaxBackward(y: Buf, gy: Buf, rows: number, cols: number, gx: Buf): void {
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += gy[off + j] * y[off + j];
    for (let j = 0; j < cols; j++) gx[off + j] += y[off + j] * (gy[off + j] - dot);
  }
}

export function logSoftmax(x: Buf, rows: number, cols: number, out: Buf): void {
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const m = rowMax(x, off, cols);
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[off + j] - m);
    const lse = m + Math.log(s);
    for (let j = 0; j < cols; j++) out[off + j] = x[off + j] - lse;
  }
}

export function logSoftmaxBackward(y: Buf, gy: Buf, rows: number, cols: number, gx: Buf): void {
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += gy[off + j];
    for (let j = 0; j < cols; j++) gx[off + j] += gy[off + j] - Math.exp(y[off + j]) * s;
  }
}

/**
 * Mean cross-entropy over rows whose label is not negative (the skipped rows); leaves
 * probScale · softmax in `probs` (also returned to host callers: the native adapter's tests compare
 * it). With `smoothing` ε (torch's label_smoothing) a row's loss is
 * (1 − ε)(lse − x[label]) + ε(lse − mean(x)) = lse − x[label] + ε(x[label] − mean(x)).
 * The loss uses log-sum-exp rather than log(prob) so a tiny probability keeps its precision.
 */
export function softmaxCrossEntropy(logits: Buf, labels: Int32Array, rows: number, cols: number, probs: Buf, probScale = 1, loss?: Buf, smoothing = 0): number {
  // Read before the softmax: probs may be logits itself (in place).
  const correction = smoothing === 0 ? 0 : smoothing * smoothingSum(logits, labels, rows, cols);
  const value = crossEntropyOf(logits, labels, rows, cols, probs, probScale, correction);
  if (loss) loss[0] = value;
  return value;
}

/**
 * Σ over the scored rows of x[label] − mean(x): the part of label smoothing's loss that is linear
 * in the logits (its gradient needs no softmax), so a kernel without smoothing adds it apart.
 */
export function smoothingSum(logits: Buf, labels: Int32Array, rows: number, cols: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (label < 0) continue;
    const off = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += logits[off + j];
    total += logits[off + label] - s / cols;
  }
  return total;
}

function crossEntropyOf(logits: Buf, labels: Int32Array, rows: number, cols: number, probs: Buf, probScale: number, correction: number): number {
  let loss = correction;
  let counted = 0;
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const label = labels[r];
    // Read before the row is overwritten: probs may be logits itself (in place).
    const picked = label >= 0 ? logits[off + label] : 0;
    const m = rowMax(logits, off, cols);
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(logits[off + j] - m);
      probs[off + j] = e;
      s += e;
    }
    const inv = probScale / s;
    for (let j = 0; j < cols; j++) probs[off + j] *= inv;
    if (label < 0) continue;
    loss += m + Math.log(s) - picked;
    counted++;
  }
  return counted === 0 ? 0 : loss / counted;
}

export function softmaxCrossEntropyBackward(
  probs: Buf, labels: Int32Array, rows: number, cols: number, scale: number, gLogits: Buf,
): void {
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (label < 0) continue;
    const off = r * cols;
    for (let j = 0; j < cols; j++) gLogits[off + j] += scale * probs[off + j];
    gLogits[off + label] -= scale;
  }
}

export function crossEntropyGradientInPlace(scaledProbs: Buf, labels: Int32Array, rows: number, cols: number, gy: Buf, counted: number, smoothing = 0): void {
  const g = gy[0];
  if (g !== 1) affine(scaledProbs, g, 0, scaledProbs);
  subtractLabels(scaledProbs, labels, rows, cols, g / counted, smoothing);
}

/**
 * probs[r, labels[r]] −= s(1 − ε) and every entry of a scored row −= sε / cols (label smoothing's
 * target; ε = 0: only the labelled entries are touched); rows with a negative label are zeroed.
 */
export function subtractLabels(probs: Buf, labels: Int32Array, rows: number, cols: number, s: number, smoothing = 0): void {
  const spread = (s * smoothing) / cols;
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    if (labels[r] < 0) {
      probs.fill(0, off, off + cols);
      continue;
    }
    if (spread !== 0) for (let j = 0; j < cols; j++) probs[off + j] -= spread;
    probs[off + labels[r]] -= s - s * smoothing;
  }
}
