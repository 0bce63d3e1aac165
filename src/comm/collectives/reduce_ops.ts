/**
 * Element-wise reductions used by the all-reduce algorithms. Each result element is computed in
 * double and stored as float32, which gives exactly the IEEE float32 sum/max (double rounding is
 * harmless for a single addition), the same bits a C implementation would produce. Sums run in the
 * tensor backend's addInto (the same single rounding), which the native backend runs at memory
 * bandwidth on the calling thread — ~8× the JavaScript loop on 8 MB, the bulk of a large ring
 * all-reduce's CPU time — and never forks (a team waiting for a descheduled thread cost 500×).
 */
import { backend } from '../../tensor/dispatch.js';
import { hostKernels } from '../../tensor/backends/cpu/storage.js';

export type ReduceOp = 'sum' | 'avg' | 'max';

export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max'];

/** dst[i] = dst[i] (op) src[i]; avg reduces as sum (the average is a final scale). */
export function reduceInto(dst: Float32Array, src: Float32Array, op: ReduceOp): void {
  const n = dst.length;
  if (op !== 'max') {
    hostKernels(backend()).addInto(dst, src);
    return;
  }
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
