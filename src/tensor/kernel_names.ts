import type { Kernels } from './backend.js';
import type { DeviceBuffer } from './storage.js';
import type { KernelName } from './kernel_registry.js';

/**
 * Every op of the kernel contract (backend.ts `Kernels`), by name: what dispatch.ts looks up in the
 * registry for a (device, dtype). The type below fails to compile when the contract gains an op
 * this list lacks, so the two cannot drift apart.
 */
export const KERNEL_NAMES = [
  'gemm', 'toBf16', 'fromBf16', 'bf16View', 'softmaxCausal',
  'subBuffer', 'unary', 'unaryBackward', 'binary', 'affine', 'powScalar', 'axpy', 'addInto', 'fill', 'dropoutMask',
  'rmsNorm', 'rmsNormBackward', 'rotary', 'rotaryBackward', 'siluMul', 'siluMulBackward',
  'sumSquares', 'mseLossBackward', 'fillNormal', 'fillUniform', 'powBackward', 'stridedCopy', 'reduceSum', 'reduceMax',
  'reduceMaxBackward', 'softmax', 'softmaxBackward', 'logSoftmax', 'logSoftmaxBackward', 'softmaxCrossEntropy',
  'crossEntropyGradientInPlace', 'softmaxCrossEntropyBackward', 'conv2d', 'conv2dBackward', 'maxPool2d', 'maxPool2dRelu',
  'maxPool2dBackward', 'maxPool2dBackwardSet', 'avgPool2d', 'avgPool2dBackward', 'batchNorm', 'batchNormBackward',
  'batchNormEvalBackward', 'layerNorm', 'layerNormBackward', 'embedding', 'embeddingBackward', 'attention',
  'attentionBackward', 'sgdStep', 'adamStep',
] as const satisfies readonly KernelName[];

/**
 * bf16 as a dtype: the ordinary ops whose bfloat16 entries are a backend's bf16 kernels (its
 * `bfloat16` object, backend.ts Bf16Entries: operands bfloat16; accumulation, bias and result
 * float32). dispatch.ts registers them under the op's name for 'bfloat16', so ops call
 * kernelsFor({ device, dtype: 'bfloat16' }).gemm; the casts (toBf16, fromBf16, bf16View) stay
 * float32 entries: they take or view float32 buffers.
 */
export const BF16_ENTRIES = ['gemm', 'conv2d', 'conv2dBackward'] as const satisfies readonly KernelName[];

/**
 * bfloat16 entries a backend may add beyond BF16_ENTRIES (a device computes in bf16 without them):
 * fused bf16 attention (backend.ts Bf16Entries); without it the op runs its products through gemm.
 */
export const BF16_OPTIONAL_ENTRIES = ['attention', 'attentionBackward'] as const satisfies readonly KernelName[];

/** The bf16 casts: what a device needs beside the bfloat16 entries to compute in bf16. */
export const BF16_CASTS = ['toBf16', 'fromBf16', 'bf16View'] as const satisfies readonly KernelName[];

/** The kernels the bf16 compute precision needs on a device (besides the float32 ones): docs/PRECISION.md. */
export const BF16_KERNEL_NAMES = [...BF16_CASTS, ...BF16_ENTRIES] as const;

// Compile-time check: a contract op missing from KERNEL_NAMES makes this `false` and the assignment fail.
type Missing = Exclude<keyof Kernels<DeviceBuffer>, (typeof KERNEL_NAMES)[number]>;
const everyOpListed: [Missing] extends [never] ? true : Missing = true;
void everyOpListed;
