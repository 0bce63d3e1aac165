import type { AttentionGeometry } from '../backend.js';
import type { DeviceBuffer } from '../storage.js';
import { record } from '../autograd.js';
import { kernelsFor } from '../dispatch.js';
import { ShapeError, sameShape, sizeOf } from '../shape.js';
import { Tensor, allocStorage } from '../tensor.js';
import { dropMask } from './dropout.js';
import type { Rng } from '../../util/rng.js';

export interface AttentionOptions {
  /** Query i attends to keys j <= i only (torch's is_causal=True: top-left aligned). */
  causal?: boolean;
  /** Multiplier of q·kᵀ; default 1/sqrt(d), as torch. */
  scale?: number;
  /**
   * Attention dropout on the probabilities (inverted, like `dropout`), drawn from the caller's
   * seeded Rng so both backends and every rerun drop the same entries. Omit it in evaluation.
   */
  dropout?: { p: number; rng: Rng };
}

/**
 * torch.nn.functional.scaled_dot_product_attention as one fused kernel: q [..., Tq, D],
 * k [..., Tk, D], v [..., Tk, Dv] with equal leading (batch, head) dimensions; returns
 * softmax(scale · q kᵀ + mask) v of shape [..., Tq, Dv]. Only the probabilities [..., Tq, Tk] are
 * kept for the backward pass (no separate score, mask or softmax tensors).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const shapes = [q.shape, k.shape, v.shape];
  if (q.ndim < 2 || k.ndim !== q.ndim || v.ndim !== q.ndim) {
    throw new ShapeError('scaledDotProductAttention', 'q, k, v must have the same rank (>= 2), e.g. [B, H, T, D]', shapes);
  }
  const lead = q.shape.slice(0, -2);
  if (!sameShape(lead, k.shape.slice(0, -2)) || !sameShape(lead, v.shape.slice(0, -2))) {
    throw new ShapeError('scaledDotProductAttention', 'leading (batch, head) dimensions differ', shapes);
  }
  const [tq, d] = q.shape.slice(-2);
  const [tk, dk] = k.shape.slice(-2);
  const [tv, dv] = v.shape.slice(-2);
  if (dk !== d || tv !== tk) throw new ShapeError('scaledDotProductAttention', 'need k [..., Tk, D] matching q [..., Tq, D] and v [..., Tk, Dv]', shapes);
  if (q.dtype !== k.dtype || q.dtype !== v.dtype) throw new Error(`scaledDotProductAttention: dtypes differ (${q.dtype}, ${k.dtype}, ${v.dtype})`);
  const g: AttentionGeometry = {
    bh: sizeOf(lead), tq, tk, d, dv, scale: opts.scale ?? 1 / Math.sqrt(d), causal: opts.causal ?? false,
  };
  const dropMask = opts.dropout ? attentionDropMask(opts.dropout.p, opts.dropout.rng, q, g) : null;
  const out = Tensor.zeros([...lead, tq, dv], q.dtype, q.device);
  const probs = allocStorage(q.dtype, g.bh * tq * tk, q.device).buffer;
  const kern = kernelsFor(q);
  kern.attention(g, q.buffer, k.buffer, v.buffer, dropMask, out.buffer, probs);
  return record(out, 'scaledDotProductAttention', [q, k, v], (gy) => {
    kern.attentionBackward(
      g, q.buffer, k.buffer, v.buffer, probs, dropMask, gy,
      q.requiresGrad ? q.ensureGrad() : null, k.requiresGrad ? k.ensureGrad() : null, v.requiresGrad ? v.ensureGrad() : null,
    );
  });
}

function attentionDropMask(p: number, rng: Rng, like: Tensor, g: AttentionGeometry): DeviceBuffer | null {
  if (!(p >= 0 && p < 1)) throw new Error(`scaledDotProductAttention: dropout p must be in [0, 1), got ${p}`);
  if (p === 0) return null;
  return dropMask(rng, p, allocStorage(like.dtype, g.bh * g.tq * g.tk, like.device)).buffer;
}
