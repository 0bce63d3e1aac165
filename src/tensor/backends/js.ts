import type { Backend, HostBackend } from '../backend.js';
import { CPU } from '../storage.js';
import { cpuBackend } from './cpu/storage.js';
import { attention, attentionBackward } from './js/attention.js';
import { bf16View, conv2dBackwardBf16, conv2dBf16, fromBf16, gemmBf16, softmaxCausal, toBf16 } from './js/bf16.js';
import { conv2d, conv2dBackward } from './js/conv.js';
import {
  addInto, affine, axpy, binary, dropoutMask, fill, mseLossBackward, powBackward, powScalar, sumSquares, unary, unaryBackward,
} from './js/elementwise.js';
import { embedding, embeddingBackward } from './js/embedding.js';
import { fillNormal, fillUniform } from './js/fill.js';
import { gemm } from './js/gemm.js';
import { stridedCopy, subBuffer } from './js/layout.js';
import {
  batchNorm, batchNormBackward, batchNormEvalBackward, layerNorm, layerNormBackward, rmsNorm, rmsNormBackward,
} from './js/norm.js';
import { adamStep, sgdStep } from './js/optim.js';
import { avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward, maxPool2dBackwardSet, maxPool2dRelu } from './js/pool.js';
import { reduceMax, reduceMaxBackward, reduceSum } from './js/reduce.js';
import { rotary, rotaryBackward } from './js/rotary.js';
import {
  crossEntropyGradientInPlace, logSoftmax, logSoftmaxBackward, softmax, softmaxBackward, softmaxCrossEntropy,
  softmaxCrossEntropyBackward,
} from './js/softmax.js';
import { siluMul, siluMulBackward } from './js/swiglu.js';
import { jsQuantKernels } from './js/quant.js';
import { QUANT_TYPES } from '../quant/formats.js';

/** The pure-TypeScript kernels: single-threaded, float32 or float64, on host arrays. */
export const jsHostBackend: HostBackend = {
  name: 'js',
  device: CPU,
  dtypes: ['float32', 'float64'],
  description: 'pure TypeScript',
  multithreaded: false,
  setThreads: () => {},
  getThreads: () => 1,
  gemm, subBuffer, unary, unaryBackward, binary, affine, powScalar, powBackward, mseLossBackward, axpy, addInto, fill, fillNormal, fillUniform,
  dropoutMask, sumSquares, stridedCopy, reduceSum, reduceMax, reduceMaxBackward, softmax, softmaxBackward, logSoftmax,
  logSoftmaxBackward, softmaxCrossEntropy, softmaxCrossEntropyBackward, crossEntropyGradientInPlace, conv2d,
  conv2dBackward, maxPool2d, maxPool2dRelu, maxPool2dBackward, maxPool2dBackwardSet, avgPool2d, avgPool2dBackward,
  batchNorm, batchNormBackward, batchNormEvalBackward, layerNorm, layerNormBackward, embedding, embeddingBackward,
  attention, attentionBackward, sgdStep, adamStep,
  rmsNorm, rmsNormBackward, rotary, rotaryBackward, siluMul, siluMulBackward,
  toBf16, fromBf16, bf16View, softmaxCausal,
  bfloat16: { gemm: gemmBf16, conv2d: conv2dBf16, conv2dBackward: conv2dBackwardBf16 },
  quantTypes: QUANT_TYPES,
  quantKernels: (type) => jsQuantKernels(type) as never,
};

/** The pure-TypeScript backend on the cpu device (the reference every other backend is tested against). */
export const jsBackend: Backend = cpuBackend(jsHostBackend);
