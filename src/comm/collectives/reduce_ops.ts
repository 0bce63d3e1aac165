/**
 * Element-wise reductions used by the reducing collectives. Each result element is computed in
 * double and stored as float32, which gives exactly the IEEE float32 sum/max (double rounding is
 * harmless for a single addition), the same bits a C implementation would produce.
 *
 * Sums run in the group's `Reducer` (dst += src), passed in the op's context as Gloo passes its
 * reducer in: comm/ knows nothing of tensors, so its default is the plain loop below, and the
 * training code hands the tensor backend's addInto to the groups it creates (the native one runs at
 * memory bandwidth, ~8x the loop on 8 MB, the bulk of a large ring all-reduce's CPU time).
 */

export type ReduceOp = 'sum' | 'avg' | 'max';

export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max'];

/** The sum kernel a group reduces with: dst[i] += src[i] in float32 (equal lengths), in place. */
export type Reducer = (dst: Float32Array, src: Float32Array) => void;

/** The default sum kernel: one float32 rounding per element, the same bits as any other correct one. */
export const plainAddInto: Reducer = (dst, src) => {
  const n = dst.length;
  for (let i = 0; i < n; i++) dst[i] += src[i];
};

/** dst[i] = dst[i] (op) src[i], sums through `add`; avg reduces as sum (the average is a final scale). */
export function reduceInto(dst: Float32Array, src: Float32Array, op: ReduceOp, add: Reducer): void {
  if (op !== 'max') {
    add(dst, src);
    return;
  }
  const n = dst.length;
  for (let i = 0; i < n; i++) {
    const s = src[i];
    if (s > dst[i] || s !== s) dst[i] = s;
  }
}

/** data[i] /= divisor: the "avg" epilogue (division, not multiplication by 1/n, for exact halves). */
export function divideInPlace(data: Float32Array, divisor: number): void {
  const n = data.length;
  for (let i = 0; i < n; i++) data[i] /= divisor;
}

export function checkOp(op: string): asserts op is ReduceOp {
  if (!(REDUCE_OPS as readonly string[]).includes(op)) throw new RangeError(`unknown reduce op '${op}' (expected ${REDUCE_OPS.join(', ')})`);
}
