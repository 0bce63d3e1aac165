import type { Conv2dGeometry, Pool2dGeometry } from '../backend.js';
import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError } from '../shape.js';
import { Tensor, allocStorage, allocUninit } from '../tensor.js';
import { autocast } from './autocast.js';
import { accumulated, bf16Operand, handsOver, sameDtype } from './bf16.js';
import { gradInput } from './cast.js';
import { releaseValues } from '../handover.js';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
}

function pair(v: number | [number, number] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : v;
}

function outSize(op: string, inSize: number, k: number, stride: number, pad: number, shapes: (readonly number[])[]): number {
  const o = Math.floor((inSize + 2 * pad - k) / stride) + 1;
  if (o < 1) throw new ShapeError(op, `kernel ${k} with padding ${pad} does not fit input size ${inSize}`, shapes);
  return o;
}

/**
 * 2-D convolution, NCHW input, weight [outC, inC, kH, kW], optional bias [outC]. bfloat16 x and
 * weight (a bf16 step's autocast casts them) run conv2d's bfloat16 entry; bias and output float32.
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const shapes = [x.shape, weight.shape];
  if (x.ndim !== 4 || weight.ndim !== 4 || weight.shape[1] !== x.shape[1]) {
    throw new ShapeError('conv2d', 'expected x [N, C, H, W] and weight [outC, C, kH, kW]', shapes);
  }
  if (bias && bias.size !== weight.shape[0]) throw new ShapeError('conv2d', 'bias must be [outC]', [...shapes, bias.shape]);
  const [strideH, strideW] = pair(opts.stride, 1);
  const [padH, padW] = pair(opts.padding, 0);
  const [batch, inC, inH, inW] = x.shape;
  const [outC, , kH, kW] = weight.shape;
  const g: Conv2dGeometry = {
    batch, inC, inH, inW, outC, kH, kW, strideH, strideW, padH, padW,
    outH: outSize('conv2d', inH, kH, strideH, padH, shapes),
    outW: outSize('conv2d', inW, kW, strideW, padW, shapes),
  };
  // The kernel overwrites every output cell (backend.ts): no zeroing of a reused buffer.
  const out = new Tensor(allocUninit(accumulated(x), batch * outC * g.outH * g.outW, x.device), [batch, outC, g.outH, g.outW]);
  const [xOperand, wOperand] = autocast('conv2d', x, weight);
  if (xOperand.dtype === 'bfloat16' || wOperand.dtype === 'bfloat16') return conv2dBf16(g, xOperand, wOperand, bias, out);
  const k = kernelsFor(x);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  k.conv2d(g, x.buffer, weight.buffer, bias ? bias.buffer : null, out.buffer);
  return record(out, 'conv2d', inputs, (gy) => {
    // Only tensors that require grad receive one (a frozen weight gets a throw-away buffer). x's
    // first gradient is written whole (no zeroing first); a later one is added.
    const fresh = x.requiresGrad ? x.gradToOverwrite() : null;
    k.conv2dBackward(
      g, x.buffer, weight.buffer, gy, fresh ?? (x.requiresGrad ? x.ensureGrad() : null),
      weight.requiresGrad ? weight.ensureGrad() : allocStorage(weight.dtype, weight.size, weight.device).buffer,
      bias?.requiresGrad ? bias.ensureGrad() : null, fresh !== null,
    );
  });
}

/**
 * conv2d on bfloat16 x and weight (docs/PRECISION.md): rounded again in the backward (see
 * bf16Operand); bias, output and every gradient float32 (the backward kernel rounds gy to bf16
 * itself). An x handed over (handover.ts) is rounded once: its bf16 cast is the saved tensor and
 * its float32 values go, also where x's maker reads their sign (BatchNorm+ReLU's mask: the cast
 * stands in for them there).
 */
function conv2dBf16(g: Conv2dGeometry, xOperand: Tensor, wOperand: Tensor, bias: Tensor | null, out: Tensor): Tensor {
  sameDtype('conv2d', xOperand, wOperand);
  const [x, weight] = [gradInput(xOperand), gradInput(wOperand)];
  const kb = kernelsFor(xOperand);
  const handedOver = handsOver(xOperand, true);
  const xo = bf16Operand(xOperand, handedOver);
  const wo = bf16Operand(wOperand);
  kb.conv2d(g, xo.forward, wo.forward, bias ? bias.buffer : null, out.buffer);
  xo.release();
  wo.release();
  if (handedOver) releaseValues(x, 'conv2d', xo.kept!);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'conv2d', inputs, (gy) => {
    const [xs, ws] = [xo.backward(), wo.backward()];
    const fresh = x.requiresGrad ? x.gradToOverwrite() : null;
    kb.conv2dBackward(
      g, xs.buffer, ws.buffer, gy, fresh ?? (x.requiresGrad ? x.ensureGrad() : null),
      weight.requiresGrad ? weight.ensureGrad() : allocStorage('float32', weight.size, weight.device).buffer,
      bias?.requiresGrad ? bias.ensureGrad() : null, fresh !== null,
    );
    xs.done();
    ws.done();
  });
}

export interface Pool2dOptions {
  kernel: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
}

function poolGeometry(op: string, x: Tensor, opts: Pool2dOptions): Pool2dGeometry {
  if (x.ndim !== 4) throw new ShapeError(op, 'expected x [N, C, H, W]', [x.shape]);
  const [kH, kW] = pair(opts.kernel, 1);
  const [strideH, strideW] = pair(opts.stride ?? opts.kernel, 1);
  const [padH, padW] = pair(opts.padding, 0);
  if (padH * 2 > kH || padW * 2 > kW) throw new ShapeError(op, 'padding must be at most half the kernel', [x.shape]);
  const [batch, channels, inH, inW] = x.shape;
  return {
    batch, channels, inH, inW, kH, kW, strideH, strideW, padH, padW,
    outH: outSize(op, inH, kH, strideH, padH, [x.shape]),
    outW: outSize(op, inW, kW, strideW, padW, [x.shape]),
  };
}

/** Max pooling (stride defaults to the kernel size, as in torch). */
export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  return maxPoolOf('maxPool2d', x, opts, false);
}

/**
 * maxPool2d(relu(x)) in one pass (a CNN's ReLU → MaxPool2d): no ReLU output or gradient the size
 * of x is made or zeroed, and ReLU runs inside the pooling loop. Values and gradients are exactly
 * relu-then-pool's (the kernel pools relu'd cells; where the maximum is 0 no gradient flows).
 */
export function maxPool2dRelu(x: Tensor, opts: Pool2dOptions): Tensor {
  return maxPoolOf('maxPool2dRelu', x, opts, true);
}

function maxPoolOf(op: string, x: Tensor, opts: Pool2dOptions, relu: boolean): Tensor {
  const g = poolGeometry(op, x, opts);
  // The kernel writes every output and argmax cell, so neither needs zeroing; the argmax is an
  // int32 storage on x's device, reused from step to step inside a recycler like the output.
  const out = new Tensor(allocUninit(x.dtype, g.batch * g.channels * g.outH * g.outW, x.device), [g.batch, g.channels, g.outH, g.outW]);
  const argmax = allocUninit('int32', out.size, x.device).buffer;
  const k = kernelsFor(x);
  if (relu) k.maxPool2dRelu(g, x.buffer, out.buffer, argmax);
  else k.maxPool2d(g, x.buffer, out.buffer, argmax);
  return record(out, op, [x], (gy) => {
    // The first gradient x receives is written whole (no zeroing first); a later one is added.
    const fresh = x.gradToOverwrite();
    if (fresh) k.maxPool2dBackwardSet(g, gy, argmax, fresh);
    else k.maxPool2dBackward(g, gy, argmax, x.ensureGrad());
  }, false); // reads gy and the argmax, never its output (handover.ts may release it)
}

/** Average pooling; padding counts in the divisor (torch's count_include_pad=True). */
export function avgPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const g = poolGeometry('avgPool2d', x, opts);
  const out = Tensor.zeros([g.batch, g.channels, g.outH, g.outW], x.dtype, x.device);
  const k = kernelsFor(x);
  k.avgPool2d(g, x.buffer, out.buffer);
  return record(out, 'avgPool2d', [x], (gy) => k.avgPool2dBackward(g, gy, x.ensureGrad()));
}

/**
 * Global average pooling: [N, C, H, W] → [N, C], the mean of each channel plane (torch's
 * AdaptiveAvgPool2d(1) followed by flatten, as ResNet's head uses it).
 */
export function globalAvgPool2d(x: Tensor): Tensor {
  if (x.ndim !== 4) throw new ShapeError('globalAvgPool2d', 'expected x [N, C, H, W]', [x.shape]);
  const [n, c, h, w] = x.shape;
  const planes = n * c;
  const area = h * w;
  if (area === 0) throw new ShapeError('globalAvgPool2d', 'empty spatial plane', [x.shape]);
  const out = Tensor.zeros([n, c], x.dtype, x.device);
  const k = kernelsFor(x);
  k.reduceSum(x.buffer, planes, area, 1, out.buffer);
  k.affine(out.buffer, 1 / area, 0, out.buffer);
  return record(out, 'globalAvgPool2d', [x], (gy) => {
    const scaled = allocStorage(x.dtype, planes, x.device).buffer;
    k.affine(gy, 1 / area, 0, scaled);
    // Every element of a plane receives that plane's gradient / (H·W): a broadcasting copy.
    k.stridedCopy(scaled, 0, [1, 0], x.ensureGrad(), 0, [area, 1], [planes, area], true);
  });
}
