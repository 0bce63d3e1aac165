import type { Backend } from '../backend.js';
import { isGradEnabled } from '../autograd.js';
import { giveBack } from '../buffer_pool.js';
import { kernelsFor } from '../dispatch.js';
import { computePrecision, weightGeneration } from '../precision.js';
import { deviceMemory, type DeviceBuffer, type Device, type Storage } from '../storage.js';
import { Tensor, allocUninit } from '../tensor.js';

/**
 * The bf16 side of the ops on torch's autocast "lower precision" list (docs/PRECISION.md): when
 * the step's precision is 'bf16', matmul/linear, conv2d and attention round their float32
 * operands to bfloat16 here and run the backends' bf16 kernels (float32 accumulation, float32
 * outputs). Every other op, and every float64 tensor, is untouched.
 */

export const bf16Tuning = {
  /** Elements of gy a bf16 linear's backward rounds at once (8 Mi: 16 MiB of bf16); tests shrink it. */
  gyBlockElements: 1 << 23,
};

/** Whether an op over these tensors computes in bf16 now. */
export function computesInBf16(...xs: Tensor[]): boolean {
  if (computePrecision() !== 'bf16') return false;
  for (const x of xs) if (x.dtype !== 'float32') return false;
  return true;
}

/** A bf16 copy of n float32 elements of `buf` (an activation or a gradient), for this step only. */
export function roundedCopy(k: Backend, buf: DeviceBuffer, n: number, device: Device): DeviceBuffer {
  return roundedStorage(k, buf, n, device).buffer;
}

/**
 * roundedCopy's storage, for a caller that is done with it within the op (a gradient's bf16 copy):
 * it hands it back with `release`, so a step's transient copies do not all live until its end.
 */
export function roundedStorage(k: Backend, buf: DeviceBuffer, n: number, device: Device): Storage {
  const out = allocUninit('bfloat16', n, device);
  k.toBf16(buf, out.buffer);
  return out;
}

/** Hands back transient buffers of an op (to the step's recycler or the pool: buffer_pool.ts). */
export function release(...storages: Storage[]): void {
  for (const s of storages) giveBack(s);
}

/** Where a backward GEMM puts a gradient it writes whole: the buffer, and the GEMM's beta. */
export interface GradTarget {
  buffer: DeviceBuffer;
  /** 0 while the gradient holds nothing yet (a fresh buffer, or a parameter's just zeroed), else 1. */
  beta: 0 | 1;
}

/**
 * A gradient target for a product that writes every cell of t's gradient: beta = 0 where nothing
 * is there yet (Tensor.gradToOverwrite), so the GEMM neither reads zeros nor needs them written
 * first: oneDNN's bf16 matmul ran GPT-2's gradient products 5–25 % faster with beta = 0 than with
 * beta = 1's sum post-op (avx512_bf16, one thread).
 */
export function gradTarget(t: Tensor): GradTarget {
  const fresh = t.gradToOverwrite();
  return fresh ? { buffer: fresh, beta: 0 } : { buffer: t.ensureGrad(), beta: 1 };
}

/** A bf16 copy of an activation. */
export function activationBf16(x: Tensor): DeviceBuffer {
  return roundedCopy(kernelsFor(x), x.buffer, x.size, x.device);
}

interface WeightCopy {
  storage: Storage;
  /** The float32 storage it was rounded from (a rebound parameter needs a new copy). */
  source: Storage;
  generation: number;
}

/** Per parameter, its bf16 copy: kept between steps (refilled, not reallocated). */
const weightCopies = new WeakMap<Tensor, WeightCopy>();

/**
 * The bf16 copy of an operand that may be a weight: a parameter (a leaf that requires a gradient)
 * is rounded once per weight generation (precision.ts: once per step) and the copy reused by
 * every use until then, as torch's autocast weight cache; anything else, or any tensor while
 * gradients are off (evaluation), is rounded afresh.
 */
export function operandBf16(t: Tensor): DeviceBuffer {
  if (!t.requiresGrad || t.gradFn || !isGradEnabled()) return activationBf16(t);
  const now = weightGeneration();
  const copy = weightCopies.get(t);
  if (copy && copy.generation === now && copy.source === t.storage) return copy.storage.buffer;
  const storage = copy && copy.storage.size === t.size ? copy.storage : deviceMemory(t.device).alloc('bfloat16', t.size);
  kernelsFor(t).toBf16(t.buffer, storage.buffer);
  weightCopies.set(t, { storage, source: t.storage, generation: now });
  return storage.buffer;
}

/** A bf16 copy of an operand for one use; `done()` hands a transient one back. */
export interface Bf16Operand {
  readonly buffer: DeviceBuffer;
  done(): void;
}

/**
 * An op's bf16 operand for its forward, and how its backward gets one again. A weight's copy is
 * the step's cached one, kept by the backward. Anything else (an activation) is rounded for the
 * forward, handed back at once, and rounded again by the backward from the float32 tensor: the
 * graph keeps that float32 tensor alive until the backward anyway (it is the op's input), so a
 * saved bf16 copy would only add memory — measured on bench:models, saving the copies cost GPT-2
 * 124M and bert-mini several per cent of peak RSS against rounding twice, for <1 % of step time.
 */
export function bf16Operand(t: Tensor): { forward: DeviceBuffer; backward: () => Bf16Operand; release: () => void } {
  if (t.requiresGrad && !t.gradFn && isGradEnabled()) {
    const buffer = operandBf16(t);
    const kept: Bf16Operand = { buffer, done: () => {} };
    return { forward: buffer, backward: () => kept, release: () => {} };
  }
  const k = kernelsFor(t);
  const round = (): Bf16Operand => {
    const s = roundedStorage(k, t.buffer, t.size, t.device);
    return { buffer: s.buffer, done: () => release(s) };
  };
  const first = round();
  return { forward: first.buffer, backward: round, release: first.done };
}
