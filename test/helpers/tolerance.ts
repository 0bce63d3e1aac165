/**
 * How close a backend's float32 results must come to the reference's: the parity suite's bound
 * (test/tensor/parity.test.ts), |got − ref| ≤ rtol·max(|got|, |ref|) + atol·max(1, max |ref|).
 * The op suite holds a backend that does not compute float64 itself (native, webgpu) to this bound
 * and no looser, wherever it compares that backend's float32 with a float64 answer.
 */
import type { CloseOptions } from './tensors.js';

export const PARITY = { rtol: 1e-4, atol: 1e-5 } as const;

/** The parity bound for a reference of these values (the absolute part scales with its largest magnitude). */
export function parityTolerance(ref: ArrayLike<number>): { rtol: number; atol: number } {
  let m = 1;
  for (let i = 0; i < ref.length; i++) if (Number.isFinite(ref[i])) m = Math.max(m, Math.abs(ref[i]));
  return { rtol: PARITY.rtol, atol: PARITY.atol * m };
}

/** The looser of a test's own tolerance and the parity bound (for a float32 backend checked against float64 values). */
export function atLeastParity(ref: ArrayLike<number>, own: CloseOptions = {}): CloseOptions {
  const p = parityTolerance(ref);
  return { ...own, rtol: Math.max(own.rtol ?? 0, p.rtol), atol: Math.max(own.atol ?? 0, p.atol) };
}
