import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError } from '../shape.js';
import { Tensor } from '../tensor.js';

function lastAxis(op: string, x: Tensor, axis: number): number {
  if (axis !== -1 && axis !== x.ndim - 1) throw new ShapeError(op, 'only the last axis is supported (permute first)', [x.shape]);
  return x.shape[x.ndim - 1];
}

export function softmax(x: Tensor, axis = -1): Tensor {
  const cols = lastAxis('softmax', x, axis);
  const rows = x.size / cols;
  const out = Tensor.zeros(x.shape, x.dtype, x.device);
  const k = kernelsFor(x);
  k.softmax(x.buffer, rows, cols, out.buffer);
  return record(out, 'softmax', [x], (gy) => k.softmaxBackward(out.buffer, gy, rows, cols, x.ensureGrad()));
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const cols = lastAxis('logSoftmax', x, axis);
  const rows = x.size / cols;
  const out = Tensor.zeros(x.shape, x.dtype, x.device);
  const k = kernelsFor(x);
  k.logSoftmax(x.buffer, rows, cols, out.buffer);
  return record(out, 'logSoftmax', [x], (gy) => k.logSoftmaxBackward(out.buffer, gy, rows, cols, x.ensureGrad()));
}
