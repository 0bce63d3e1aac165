/**
 * Element-wise reductions used by the all-reduce algorithms. Each result element is computed in
 * double and stored as float32, which gives exactly the IEEE float32 sum/max (double rounding is
 * harmless for a single addition), the same bits a C implementation would produce. Large sums run in
 * the tensor backend's axpy (y += 1·x: the same single rounding), which the native backend runs at
 * memory bandwidth — ~8× the JavaScript loop on 8 MB, the bulk of a large ring all-reduce's CPU time.
 */
import { backend } from '../../tensor/dispatch.js';

export type ReduceOp = 'sum' | 'avg' | 'max';

export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max'];

/** Below this many elements the JavaScript loop beats a call into the addon. */
const BACKEND_MIN = 4096;

/** dst[i] = dst[i] (op) src[i]; avg reduces as sum (the average is a final scale). */
export function reduceInto(dst: Float32Array, src: Float32Array, op: ReduceOp): void {
  const n = dst.length;
  if (op !== 'max' && n >= BACKEND_MIN) {
    backend().axpy(1, src, dst);
    return;
  }
  if (op === 'max') {
    for (let i = 0; i < n; i++) {
      const s = src[i];
      if (s > dst[i] || s !== s) dst[i] = s;
    }
    return;
  }
  // Unrolled by four: ~30% faster in V8 on large buffers (fewer loop and bounds checks per add).
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    dst[i] += src[i];
    dst[i + 1] += src[i + 1];
    dst[i + 2] += src[i + 2];
    dst[i + 3] += src[i + 3];
  }
  for (; i < n; i++) dst[i] += src[i];
}

/** data[i] /= divisor: the "avg" epilogue (division, not multiplication by 1/n, for exact halves). */
export function divideInPlace(data: Float32Array, divisor: number): void {
  const n = data.length;
  for (let i = 0; i < n; i++) data[i] /= divisor;
}

export function checkOp(op: string): asserts op is ReduceOp {
  if (!(REDUCE_OPS as readonly string[]).includes(op)) throw new RangeError(`unknown reduce op '${op}' (expected ${REDUCE_OPS.join(', ')})`);
}
