import type { Backend } from '../backend.js';
import { attention, attentionBackward } from './js/attention.js';
import { conv2d, conv2dBackward } from './js/conv.js';
import { addInto, affine, axpy, binary, dropoutMask, fill, powScalar, sumSquares, unary, unaryBackward } from './js/elementwise.js';
import { embedding, embeddingBackward } from './js/embedding.js';
import { gemm } from './js/gemm.js';
import { stridedCopy } from './js/layout.js';
import { batchNorm, batchNormBackward, layerNorm, layerNormBackward } from './js/norm.js';
import { adamStep, sgdStep } from './js/optim.js';
import { avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward, maxPool2dBackwardSet, maxPool2dRelu } from './js/pool.js';
import { reduceMax, reduceSum } from './js/reduce.js';
import {
  logSoftmax, logSoftmaxBackward, softmax, softmaxBackward, softmaxCrossEntropy, softmaxCrossEntropyBackward,
} from './js/softmax.js';

/** The pure-TypeScript backend: single-threaded, float32 or float64. */
export const jsBackend: Backend = {
  name: 'js',
  description: 'pure TypeScript',
  setThreads: () => {},
  getThreads: () => 1,
  gemm, unary, unaryBackward, binary, affine, powScalar, axpy, addInto, fill, dropoutMask, sumSquares, stridedCopy,
  reduceSum, reduceMax, softmax, softmaxBackward, logSoftmax, logSoftmaxBackward,
  softmaxCrossEntropy, softmaxCrossEntropyBackward, conv2d, conv2dBackward, maxPool2d, maxPool2dRelu,
  maxPool2dBackward, maxPool2dBackwardSet, avgPool2d, avgPool2dBackward, batchNorm, batchNormBackward, layerNorm,
  layerNormBackward, embedding, embeddingBackward, attention, attentionBackward, sgdStep, adamStep,
};
