import { record } from '../../tensor/autograd.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { takeValues } from '../../tensor/handover.js';
import { gradTarget, release, roundInPlace, roundedStorage } from '../../tensor/ops/bf16.js';
import { Tensor } from '../../tensor/tensor.js';

/**
 * A bf16 step's LoRA sum, fused: out = y + s · (a Bᵀ), with y the base product [M, out] (float32,
 * read by nothing else), a = A x [M, r] (float32) and B [out, r] the trained float32 matrix. The
 * update is one bf16 GEMM (a and B rounded as autocast rounds them) that adds s · a Bᵀ into y's own
 * memory (alpha s, beta 1), where the composition wrote B a, then s · B a, then the sum: three
 * [M, out] float32 passes forward and their three gradients backward. The backward copies gy into
 * y's gradient, rounds gy to bf16 in its own memory and runs a's and B's gradient GEMMs with alpha
 * s. The numbers are the composition's but for the rounding of s · (a Bᵀ) + y, which the GEMM may
 * fuse (bf16 tolerance).
 */
export function loraUpdate(y: Tensor, a: Tensor, b: Tensor, scale: number): Tensor {
  const [M, rank] = [a.size / a.shape[a.ndim - 1], a.shape[a.ndim - 1]];
  const outF = b.shape[0];
  if (b.shape[1] !== rank || y.size !== M * outF) throw new Error(`loraUpdate: expected y [M, ${outF}], a [M, ${b.shape[1]}], got ${y.shape} and ${a.shape}`);
  const k = kernelsFor({ device: y.device, dtype: 'float32' });
  const kb = kernelsFor({ device: y.device, dtype: 'bfloat16' });
  // a's bf16 copy serves both GEMMs (it is small: M × r); B is rounded again in the backward.
  const ab = roundedStorage(k, a.buffer, a.size, a.device);
  const bb = roundedStorage(k, b.buffer, b.size, b.device);
  const out = new Tensor(takeValues(y, 'loraUpdate'), y.shape);
  kb.gemm(false, true, M, outF, rank, scale, ab.buffer, 0, bb.buffer, 0, 1, out.buffer, 0, 1);
  release(bb);
  const done = record(out, 'loraUpdate', [y, a, b], (gy) => {
    if (y.requiresGrad) {
      const fresh = y.gradToOverwrite();
      if (fresh) k.stridedCopy(gy, 0, [1], fresh, 0, [1], [y.size], false);
      else k.axpy(1, gy, y.ensureGrad());
    }
    const gyb = roundInPlace(k, gy, out.size, out.device);
    if (a.requiresGrad) {
      const again = roundedStorage(k, b.buffer, b.size, b.device);
      const ga = gradTarget(a);
      kb.gemm(false, false, M, rank, outF, scale, gyb, 0, again.buffer, 0, ga.beta, ga.buffer, 0, 1);
      release(again);
    }
    if (b.requiresGrad) {
      const gb = gradTarget(b);
      kb.gemm(true, false, outF, rank, M, scale, gyb, 0, ab.buffer, 0, gb.beta, gb.buffer, 0, 1);
    }
    release(ab);
  }, false);
  if (!done.requiresGrad) release(ab);
  return done;
}
