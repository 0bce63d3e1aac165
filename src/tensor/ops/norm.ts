import type { DeviceBuffer, Storage } from '../storage.js';
import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sizeOf } from '../shape.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';
import { relu } from './elementwise.js';
import { giveBack } from '../buffer_pool.js';
import { standInFor, valuesReleased } from '../handover.js';

export interface BatchNormState {
  runningMean: Storage;
  runningVar: Storage;
  momentum: number;
  eps: number;
  training: boolean;
}

/** The tensor's gradient buffer, or a throw-away one when it does not require grad (frozen). */
function gradOrScratch(t: Tensor): DeviceBuffer {
  return t.requiresGrad ? t.ensureGrad() : allocStorage(t.dtype, t.size, t.device).buffer;
}

/**
 * Batch normalisation over channel axis 1 of [N, C, ...] (BatchNorm1d/2d). In training mode the
 * batch statistics are used and the running statistics updated; in eval mode the running ones.
 */
export function batchNorm(x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState): Tensor {
  return batchNormOf(x, gamma, beta, state, false);
}

/**
 * relu(batchNorm(x)) as one op in training mode: the kernel clamps as it writes, and the backward
 * masks the gradient inside batch-norm's own passes, so no relu output or gradient of x's size is
 * made (ResNet's conv → bn → relu). Eval mode composes the two ops.
 */
export function batchNormRelu(x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState): Tensor {
  if (!state.training) return relu(batchNormOf(x, gamma, beta, state, false));
  return batchNormOf(x, gamma, beta, state, true);
}

function batchNormOf(x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState, withRelu: boolean): Tensor {
  const C = x.shape[1];
  if (x.ndim < 2 || gamma.size !== C || beta.size !== C) {
    throw new ShapeError('batchNorm', 'expected x [N, C, ...] with gamma and beta [C]', [x.shape, gamma.shape, beta.shape]);
  }
  const outer = x.shape[0];
  const inner = sizeOf(x.shape.slice(2));
  // The kernel writes every output cell: no zeroing of a reused buffer.
  const out = new Tensor(allocUninit(x.dtype, x.size, x.device), x.shape);
  const mean = allocStorage(x.dtype, C, x.device).buffer;
  const invStd = allocStorage(x.dtype, C, x.device).buffer;
  const k = kernelsFor(x);
  k.batchNorm(
    x.buffer, outer, C, inner, gamma.buffer, beta.buffer, state.runningMean.buffer, state.runningVar.buffer,
    state.training, state.momentum, state.eps, out.buffer, mean, invStd, withRelu,
  );
  if (!state.training) return evalAffine(out, x, gamma, beta, mean, invStd, outer, C, inner);
  const op = withRelu ? 'batchNormRelu' : 'batchNorm';
  return record(out, op, [x, gamma, beta], (gy) => {
    // x's first gradient is written whole (no zeroing first); a later one is added.
    const fresh = x.requiresGrad ? x.gradToOverwrite() : allocUninit(x.dtype, x.size, x.device).buffer;
    const gx = fresh ?? x.ensureGrad();
    const mask = withRelu ? reluMaskOf(out, op) : null;
    k.batchNormBackward(
      x.buffer, outer, C, inner, gamma.buffer, mean, invStd, gy, gx, gradOrScratch(gamma), gradOrScratch(beta),
      fresh !== null, mask && mask.buffer,
    );
    mask?.done();
  }, withRelu ? 'sign' : false); // the fused ReLU reads which outputs are > 0; batchNorm alone, none
}

/**
 * The output BatchNorm+ReLU's backward masks with: its own values, or, where a bf16 conv took them
 * as its last use (handover.ts), the bf16 copy the conv kept, which the kernel reads as is (the
 * same cells > 0, but for float32 denormals, which bf16 rounds to zero); `done` then gives it back.
 * (Widening it to float32 first cost as much memory in the backward as the hand-over saved.)
 */
function reluMaskOf(out: Tensor, op: string): { buffer: DeviceBuffer; done: () => void } {
  if (!valuesReleased(out)) return { buffer: out.buffer, done: () => {} };
  const copy = standInFor(out, op);
  return { buffer: copy.buffer, done: () => giveBack(copy) };
}

/** Eval-mode batch-norm is an affine map per channel with fixed statistics. */
function evalAffine(out: Tensor, x: Tensor, gamma: Tensor, beta: Tensor, mean: DeviceBuffer, invStd: DeviceBuffer, outer: number, C: number, inner: number): Tensor {
  return record(out, 'batchNormEval', [x, gamma, beta], (gy) => {
    kernelsFor(x).batchNormEvalBackward(
      x.buffer, outer, C, inner, gamma.buffer, mean, invStd, gy, x.requiresGrad ? x.ensureGrad() : null,
      gradOrScratch(gamma), gradOrScratch(beta),
    );
  });
}

/** Layer normalisation over the last axis, with per-feature gamma and beta. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const cols = x.shape[x.ndim - 1];
  if (gamma.size !== cols || beta.size !== cols) {
    throw new ShapeError('layerNorm', 'gamma and beta must match the last axis', [x.shape, gamma.shape, beta.shape]);
  }
  const rows = x.size / cols;
  const out = Tensor.zeros(x.shape, x.dtype, x.device);
  const mean = allocStorage(x.dtype, rows, x.device).buffer;
  const invStd = allocStorage(x.dtype, rows, x.device).buffer;
  const k = kernelsFor(x);
  k.layerNorm(x.buffer, rows, cols, gamma.buffer, beta.buffer, eps, out.buffer, mean, invStd);
  return record(out, 'layerNorm', [x, gamma, beta], (gy) => {
    const gx = x.requiresGrad ? x.ensureGrad() : allocStorage(x.dtype, x.size, x.device).buffer;
    k.layerNormBackward(x.buffer, rows, cols, gamma.buffer, mean, invStd, gy, gx, gradOrScratch(gamma), gradOrScratch(beta));
  }, false);
}
