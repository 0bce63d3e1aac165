import type { Backend } from '../backend.js';
import { giveBack } from '../buffer_pool.js';
import { isStandIn, mayRelease } from '../handover.js';
import { kernelsFor } from '../dispatch.js';
import type { DType, DeviceBuffer, Device, Storage } from '../storage.js';
import { type Tensor, allocUninit } from '../tensor.js';
import { castSource, isForOneOp } from './cast.js';

/**
 * The bfloat16 side of matmul/linear, conv2d and attention (docs/PRECISION.md): given bfloat16
 * operands (autocast.ts casts them) they run their op's 'bfloat16' kernel entry (float32
 * accumulation, float32 outputs); this file holds what those paths share: how long an operand's
 * bf16 memory lives, and the rounding of gradients to bf16.
 */

export const bf16Tuning = {
  /** Elements `roundInPlace` copies aside before it rounds the rest in place (256 KiB); tests shrink it. */
  inPlaceFirstBlock: 1 << 16,
};

/**
 * A bf16 copy of n float32 elements of `buf` (an operand or a gradient), for a caller that is done
 * with it within the op: it hands it back with `release`, so a step's transient copies do not all
 * live until its end.
 */
export function roundedStorage(k: Backend, buf: DeviceBuffer, n: number, device: Device): Storage {
  const out = allocUninit('bfloat16', n, device);
  k.toBf16(buf, out.buffer);
  return out;
}

/**
 * Rounds n float32 elements of a buffer nothing reads again (the output gradient a GradFn is given:
 * autograd frees it right after) to bf16 in its own memory, and returns the bf16 view of its first
 * half: the backward's bf16 gy costs no memory, however large (a vocabulary head's tokens × 50257).
 * Element block [a, b) with b ≤ 2a is written to bytes [2a, 2b), which held the float32 elements
 * [a/2, b/2), all below a: already rounded. The first block is copied aside first and rounded last.
 */
export function roundInPlace(k: Backend, buf: DeviceBuffer, n: number, device: Device): DeviceBuffer {
  const first = Math.min(n, bf16Tuning.inPlaceFirstBlock);
  const head = allocUninit('float32', first, device);
  k.stridedCopy(buf, 0, [1], head.buffer, 0, [1], [first], false);
  for (let a = first; a < n; ) {
    const b = Math.min(n, 2 * a);
    k.toBf16(k.subBuffer(buf, a, b - a), k.bf16View(buf, a, b - a));
    a = b;
  }
  k.toBf16(head.buffer, k.bf16View(buf, 0, first));
  release(head);
  return k.bf16View(buf, 0, n);
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

/** A bf16 copy of an operand for one use; `done()` hands a transient one back. */
export interface Bf16Operand {
  readonly buffer: DeviceBuffer;
  done(): void;
}

/**
 * An op's bf16 operand t for its forward, and how its backward gets one again. A cast autocast
 * made for this op (cast.ts toBf16ForOneOp) is by default transient: the forward uses it and
 * hands it back at once, and the backward rounds again from the float32 source, which the graph
 * keeps anyway. This holds for
 * weights too: keeping each weight's bf16 copy from its forward to its backward (autocast's weight
 * cache) would hold 2 bytes per parameter (248 MB on GPT-2 124M) through the step on top of the
 * float32 master weights, while rounding a weight again costs a pass over it (measured in
 * docs/PRECISION.md). The transient buffers come from the step's recycler, so one layer's copies
 * are the next layer's (of the same shape) again.
 *
 * With `keep` (an activation whose float32 values the op then releases: handover.ts) the cast is
 * the one the backward uses: it is the saved tensor, in bf16, `kept` (for releaseValues). The
 * backward's `done` gives it back unless it stands in for the source's values in the source's
 * maker's backward (handover.ts `standInFor`), which then does.
 *
 * Any other bfloat16 operand is the caller's, used as it is by forward and backward and never
 * given back: a cast made with toBf16 (its gradient still goes to its source), or a bfloat16
 * tensor that is no cast, which may not require a gradient (gradients are float32).
 */
export function bf16Operand(t: Tensor, keep = false): { forward: DeviceBuffer; kept: Storage | null; backward: () => Bf16Operand; release: () => void } {
  const source = castSource(t);
  if (!source || !isForOneOp(t)) {
    if (t.requiresGrad) throw new Error('a bfloat16 tensor that requires grad: gradients are float32, so cast a float32 tensor (toBf16) instead');
    const own: Bf16Operand = { buffer: t.buffer, done: () => {} };
    return { forward: t.buffer, kept: null, backward: () => own, release: () => {} };
  }
  const cast = t.storage;
  if (keep) {
    const saved: Bf16Operand = {
      buffer: cast.buffer,
      done: () => {
        if (!isStandIn(source, cast)) release(cast);
      },
    };
    return { forward: cast.buffer, kept: cast, backward: () => saved, release: () => {} };
  }
  const k = kernelsFor(source);
  const roundAgain = (): Bf16Operand => {
    const s = roundedStorage(k, source.buffer, source.size, source.device);
    return { buffer: s.buffer, done: () => release(s) };
  };
  return { forward: cast.buffer, kept: null, backward: roundAgain, release: () => release(cast) };
}

/**
 * Whether the op may release the float32 values of `operand`'s source (handover.ts mayRelease):
 * only for a cast made for this op, which it then keeps as the saved tensor (bf16Operand's keep).
 */
export function handsOver(operand: Tensor, bf16Copy = false): boolean {
  const source = castSource(operand);
  return source !== null && isForOneOp(operand) && mayRelease(source, bf16Copy);
}

/** The dtype an op over `x` writes: float32 for bfloat16 operands (float32 accumulation), else x's. */
export function accumulated(x: Tensor): DType {
  return x.dtype === 'bfloat16' ? 'float32' : x.dtype;
}

/** Refuses operands of mixed dtypes where one is bfloat16 (autocast casts all of an op's operands, or none). */
export function sameDtype(op: string, ...xs: Tensor[]): void {
  if (xs.some((x) => x.dtype !== xs[0].dtype)) {
    throw new Error(`${op}: operands' dtypes differ (${xs.map((x) => x.dtype).join(', ')}): cast all of them to bfloat16 (toBf16), or none`);
  }
}
