/**
 * The compute precision of a training step (docs/PRECISION.md): a property of the step, not of the
 * model. Master weights, gradients and optimizer state stay float32 in the arenas whatever it is;
 * under 'bf16' the ops on torch's autocast "lower precision" list (matmul/linear, convolution,
 * attention) compute in bfloat16 with float32 accumulation, and everything else stays float32.
 *
 * The training loop sets it once per run (`setComputePrecision`); ops read it when they record, so
 * a backward computes in the precision its forward did.
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
