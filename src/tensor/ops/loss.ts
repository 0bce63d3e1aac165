import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sameShape } from '../shape.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';
import type { Device, Storage } from '../storage.js';
import { giveBack } from '../buffer_pool.js';
import { mayOverwrite, takeValues } from '../handover.js';
import { mappedMemory } from '../boundary/host_values.js';
import { hostIndexValues, indexCount, indexStorage, type Indices } from './indices.js';

/** PyTorch's ignore label: a target equal to it contributes nothing to the loss (torch's ignore_index default). */
export const IGNORE_LABEL = -100;

/** How crossEntropy scores its labels; a bare number is `scored`. */
export interface CrossEntropyOptions {
  /**
   * Labels equal to this take no part, as torch's `ignore_index` (default -100). Label -1, the
   * engine's own skip mark, is skipped whatever this is.
   */
  ignoreIndex?: number;
  /** torch's `label_smoothing` ε in [0, 1]: the target is (1 − ε)·onehot + ε / classes. Default 0. */
  labelSmoothing?: number;
  /** The number of rows scored: required for labels on a GPU, which the host cannot count. */
  scored?: number;
}

/**
 * Fused softmax + cross-entropy, mean over the scored rows. logits are [..., classes]; labels hold
 * one class index per row: an int32 tensor on the logits' device, or host values. A label equal to
 * `ignoreIndex` (PyTorch's -100 by default) or -1 scores nothing; when no row is scored the loss is
 * 0 with a zero gradient (torch's 'mean' gives NaN, which would poison a whole training run; a
 * packed batch whose window holds only prompt tokens is ordinary in chat fine-tuning). The mean's
 * divisor is counted here where the host reads the labels (host values, or a tensor in the cpu's
 * memory), and given as `scored` by a caller whose labels live on a GPU (it counted them on the
 * host before they went there: train/loop/objective.ts). Labels the host cannot read go unchecked:
 * the GPU's bounds-checked buffer access keeps a bad one from reaching other memory.
 */
export function crossEntropy(logits: Tensor, labels: Indices, options?: number | CrossEntropyOptions): Tensor {
  const opts = typeof options === 'number' ? { scored: options } : options ?? {};
  const ignoreIndex = opts.ignoreIndex ?? IGNORE_LABEL;
  const smoothing = opts.labelSmoothing ?? 0;
  checkOptions(ignoreIndex, smoothing);
  const cols = logits.shape[logits.ndim - 1];
  const rows = logits.size / cols;
  const given = indexCount(labels);
  if (given !== rows) {
    throw new ShapeError('crossEntropy', `expected ${rows} labels, got ${given}`, [logits.shape, [given]]);
  }
  const counted = scoredRows(labels, cols, ignoreIndex, opts.scored);
  const labelBuf = engineLabelStorage(labels, ignoreIndex, logits.device).buffer;
  const k = kernelsFor(logits);
  // The softmax overwrites every element. It stores probs / counted: the mean's factor rides along
  // the softmax's normalising multiply, so the usual backward (gy = 1) needs no pass over probs.
  // Logits handed over (lastUse: the model's output, which the training step reads no further)
  // whose maker does not read them back (a linear head) are dead once the probabilities exist: in
  // memory the host addresses (the host backends' kernels may alias their operands) the softmax
  // writes them over the logits, so a step holds one logits-sized buffer (103 MB on GPT-2 124M at
  // 512 tokens) instead of two. An evaluation's handed-over logits, outside autograd, likewise.
  // (A GPU kernel may not read and write one buffer through two bindings.)
  const inPlace = mappedMemory(logits.storage) !== undefined && mayOverwrite(logits);
  const probs = inPlace ? takeValues(logits, 'crossEntropy') : allocUninit(logits.dtype, logits.size, logits.device);
  // The loss stays on the device until someone reads it (item(), a metric).
  const out = new Tensor(allocUninit(logits.dtype, 1, logits.device), []);
  k.softmaxCrossEntropy(inPlace ? probs.buffer : logits.buffer, labelBuf, rows, cols, probs.buffer, counted > 0 ? 1 / counted : 1, out.buffer, smoothing);
  return record(out, 'crossEntropy', [logits], (gy) => {
    if (counted === 0) return giveBack(probs);
    // An intermediate's first gradient: turn probs into it in place (no logits-sized buffer to
    // allocate, zero and add into). Leaves and already-started gradients accumulate as usual.
    if (logits.gradFn && !logits.grad) {
      k.crossEntropyGradientInPlace(probs.buffer, labelBuf, rows, cols, gy, counted, smoothing);
      logits.grad = probs;
      return;
    }
    k.crossEntropyGradientInPlace(probs.buffer, labelBuf, rows, cols, gy, counted, smoothing);
    k.axpy(1, probs.buffer, logits.ensureGrad());
    giveBack(probs);
  });
}

function checkOptions(ignoreIndex: number, smoothing: number): void {
  if (!Number.isInteger(ignoreIndex)) throw new TypeError(`crossEntropy: ignoreIndex must be an integer, got ${ignoreIndex}`);
  if (!(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`crossEntropy: labelSmoothing must lie in [0, 1], got ${smoothing}`);
}

/** Whether a label scores nothing: the ignore label, or the engine's own skip mark -1. */
export function isIgnoredLabel(label: number, ignoreIndex: number = IGNORE_LABEL): boolean {
  return label === ignoreIndex || label === -1;
}

/**
 * The rows whose label is not ignored, counted on the host where it reads the labels (each checked
 * to lie in [0, cols) or be ignored); else the caller's `scored`, which labels on a GPU need.
 */
function scoredRows(labels: Indices, cols: number, ignoreIndex: number, scored: number | undefined): number {
  const host = hostIndexValues(labels);
  if (!host) {
    if (scored === undefined) throw new Error(`crossEntropy: labels on device "${(labels as Tensor).device}" cannot be counted on the host: pass the number of scored rows (labels other than ${ignoreIndex} and -1)`);
    return scored;
  }
  let counted = 0;
  for (let i = 0; i < host.length; i++) {
    if (isIgnoredLabel(host[i], ignoreIndex)) continue;
    if (host[i] >= cols || host[i] < 0) throw new Error(`crossEntropy: label ${host[i]} at row ${i} is outside [0, ${cols}) and is not the ignore label ${ignoreIndex}`);
    counted++;
  }
  if (scored !== undefined && scored !== counted) throw new Error(`crossEntropy: ${scored} scored rows given, but the labels score ${counted}`);
  return counted;
}

/**
 * The labels as the kernels read them: they skip a row whose label is negative, so an ignore label
 * other than -1 becomes -1 (on the host: a copy, made only when one occurs). On a GPU a negative
 * ignore label needs no mapping; a non-negative one cannot be mapped without reading the labels back.
 */
function engineLabelStorage(labels: Indices, ignoreIndex: number, device: Device): Storage {
  let host: Int32Array | null;
  if (labels instanceof Int32Array) host = labels;
  else {
    const storage = indexStorage('crossEntropy', labels, device); // refuses another dtype or device
    host = hostIndexValues(labels);
    if (!host) {
      if (ignoreIndex >= 0) throw new Error(`crossEntropy: ignoreIndex ${ignoreIndex} is a class index, which labels on device "${device}" cannot be mapped from: pass host labels, or a negative ignoreIndex`);
      return storage;
    }
  }
  const mapped = ignoreIndex !== -1 && host.includes(ignoreIndex) ? host.map((l) => (l === ignoreIndex ? -1 : l)) : host;
  return indexStorage('crossEntropy', mapped, device);
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
