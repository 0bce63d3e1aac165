import { add } from '../../tensor/ops/elementwise.js';
import { matmul } from '../../tensor/ops/matmul.js';
import { permute, reshape, slice } from '../../tensor/ops/layout.js';
import { softmax } from '../../tensor/ops/softmax.js';
import { affine } from '../../tensor/ops/elementwise.js';
import { Tensor } from '../../tensor/tensor.js';

const causalMasks = new Map<number, Tensor>();

/** [T, T] additive mask: 0 on and below the diagonal, -∞ above (a position sees only its past). */
function causalMask(T: number): Tensor {
  let m = causalMasks.get(T);
  if (!m) {
    m = Tensor.zeros([T, T]);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m.data[i * T + j] = -Infinity;
    causalMasks.set(T, m);
  }
  return m;
}

/**
 * Scaled dot-product attention over heads: q, k, v are [N, H, T, D]; the result is [N, H, T, D].
 * softmax(q kᵀ / √D (+ causal mask)) v, composed from batched matmul and softmax.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, causal: boolean): Tensor {
  const T = q.shape[2];
  const D = q.shape[3];
  let scores = affine(matmul(q, permute(k, [0, 1, 3, 2])), 1 / Math.sqrt(D));
  if (causal) scores = add(scores, causalMask(T));
  return matmul(softmax(scores), v);
}

/** [N, T, H·D] → [N, H, T, D]. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [N, T, C] = x.shape;
  return permute(reshape(x, [N, T, heads, C / heads]), [0, 2, 1, 3]);
}

/** [N, H, T, D] → [N, T, H·D]. */
export function mergeHeads(x: Tensor): Tensor {
  const [N, H, T, D] = x.shape;
  return reshape(permute(x, [0, 2, 1, 3]), [N, T, H * D]);
}

/** Splits a fused [N, T, 3C] projection into q, k, v, each [N, H, T, D]. */
export function splitQkv(qkv: Tensor, heads: number): [Tensor, Tensor, Tensor] {
  const [N, T, C3] = qkv.shape;
  const C = C3 / 3;
  const all = permute(reshape(qkv, [N, T, 3, heads, C / heads]), [2, 0, 3, 1, 4]);
  const part = (i: number): Tensor => reshape(slice(all, 0, i, i + 1), [N, heads, T, C / heads]);
  return [part(0), part(1), part(2)];
}
