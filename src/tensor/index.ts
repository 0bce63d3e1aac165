/** The tensor engine's public surface: Tensor, storage, autograd, ops, backends. */
export type {
  Backend, BackendInfo, Bf16Entries, Bf16Packing, DecodeAttention, FusedDecode, LlamaDecodeBlock, LlamaDecodePlan, LlamaDecodeStep, LlamaDecodeWeights, LlamaStackShape, RowArgmax, HugePages, WidenedThin, PackedWeight, Kernels, AdamHyper, SgdHyper, AttentionGeometry, Conv2dGeometry, Pool2dGeometry, BinaryOp, UnaryOp,
} from './backend.js';
export { Tensor, allocStorage, allocUninit, type DType, type Device, type GradFn } from './tensor.js';
export { CPU, deviceMemory, registerDevice, type DeviceBuffer, type DeviceMemory, type HostArray, type Storage } from './storage.js';
export { DeviceScalar, sumOfSquares } from './scalar.js';
export { backward, noGrad, isGradEnabled, type Gradient, type BackwardHooks } from './autograd.js';
export { lastUse } from './handover.js';
export {
  backend, backendFor, canRun, setBackend, kernelsFor, nativeAvailable, registerBackend, registeredBackends, type BackendName,
  type RegisteredBackend,
} from './dispatch.js';
export {
  getKernel, hasKernels, kernelsRegistered, registerKernel, unregisterKernel, type KernelConfig, type KernelName, type RegistryKernels,
} from './kernel_registry.js';
export { QUANT_TYPES, bitsPerWeight, isQuantType, type QuantType } from './quant/formats.js';
export type { QuantBackend, QuantKernels } from './quant/kernels.js';
export { BF16_KERNEL_NAMES, KERNEL_NAMES } from './kernel_names.js';
export { supportsPrecision } from './precision_support.js';
export { summarizeDevice, type DeviceSummary } from './device_summary.js';
export { ShapeError, sizeOf, stridesOf } from './shape.js';
export { PRECISIONS, computePrecision, setComputePrecision, withComputePrecision, type Precision, type PrecisionChoice } from './precision.js';
export * from './ops/elementwise.js';
export * from './ops/matmul.js';
export { CastCache, activeCastCache, setCastCache } from './ops/cast_cache.js';
export { isPacked, markUnchanging, setWeightPacking } from './ops/packed_weights.js';
export * from './ops/reduce.js';
export * from './ops/layout.js';
export * from './ops/softmax.js';
export * from './ops/loss.js';
export * from './ops/conv.js';
export * from './ops/norm.js';
export * from './ops/embedding.js';
export { dequantize, quantize } from './ops/quant.js';
export * from './ops/dropout.js';
export * from './ops/attention.js';
export * from './ops/indices.js';
export * from './ops/rms_norm.js';
export * from './ops/rotary.js';
export * from './ops/swiglu.js';
export type { MaybeAsync } from './group_sum.js';
export { toBf16 } from './ops/cast.js';
export { LOWER_PRECISION_OPS, autocast, lowersToBf16, type LowerPrecisionOp } from './ops/autocast.js';
