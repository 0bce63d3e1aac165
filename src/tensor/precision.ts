/**
 * The compute precision of a training step (docs/PRECISION.md): a property of the step, not of the
 * model. It selects the step's lower-precision policy (ops/autocast.ts, torch's autocast): under
 * 'bf16' the ops on its list (matmul/linear, convolution, attention) get their float32 operands
 * cast to bfloat16 and dispatch on that dtype (float32 accumulation and output); everything else
 * stays float32, as do master weights, gradients and optimizer state in the arenas.
 *
 * The training loop sets it once per run (`setComputePrecision`); the casts are made when an op
 * records, so a backward computes in the precision its forward did.
 */
export type Precision = 'fp32' | 'bf16';

/** What `--precision` takes: a precision, or 'auto' (resolved once at start-up, see the loop). */
export type PrecisionChoice = Precision | 'auto';

export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16'];

let current: Precision = 'fp32';

export function computePrecision(): Precision {
  return current;
}

export function setComputePrecision(p: Precision): void {
  current = p;
}

/** Runs `fn` with precision `p`, restoring the previous one after (synchronous code only). */
export function withComputePrecision<T>(p: Precision, fn: () => T): T {
  const before = current;
  current = p;
  try {
    return fn();
  } finally {
    current = before;
  }
}
