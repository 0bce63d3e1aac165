/**
 * Small builders and comparisons shared by the tensor tests. A helper module, not a test file: its
 * name matches none of node's test-file patterns (and it defines no tests if run anyway).
 */
import assert from 'node:assert/strict';
import { Tensor, type DType } from '../../src/tensor/tensor.js';
import { fmtShape, sizeOf } from '../../src/tensor/shape.js';
import { Rng } from '../../src/util/rng.js';

export { Rng };

/** Standard-normal values times `scale`. */
export function randn(shape: readonly number[], rng: Rng, dtype: DType = 'float64', scale = 1): Tensor {
  return Tensor.randn(shape, rng, dtype, scale);
}

/** Uniform in [lo, hi). */
export function uniform(shape: readonly number[], rng: Rng, lo: number, hi: number, dtype: DType = 'float64'): Tensor {
  return Tensor.uniform(shape, rng, lo, hi, dtype);
}

/**
 * Values with |v| in [minAbs, maxAbs] and random sign: keeps finite differences away from the kink
 * of relu / abs at 0.
 */
export function awayFromZero(shape: readonly number[], rng: Rng, minAbs = 0.1, maxAbs = 1, dtype: DType = 'float64'): Tensor {
  const t = Tensor.zeros(shape, dtype);
  for (let i = 0; i < t.size; i++) {
    const m = minAbs + (maxAbs - minAbs) * rng.uniform();
    t.values()[i] = rng.uniform() < 0.5 ? -m : m;
  }
  return t;
}

/**
 * Pairwise-distinct values in (-1, 1), spaced at least 2/n apart, in random order: every max is
 * unique with a margin far larger than a finite-difference step (max, max pooling).
 */
export function distinct(shape: readonly number[], rng: Rng, dtype: DType = 'float64'): Tensor {
  const n = sizeOf(shape);
  const perm = rng.permutation(n);
  const t = Tensor.zeros(shape, dtype);
  for (let i = 0; i < n; i++) t.values()[i] = ((perm[i] + 0.5) / n) * 2 - 1;
  return t;
}

/** A copy of `t` (data only, no graph) in the given dtype. */
export function cloneAs(t: Tensor, dtype: DType = t.dtype, requiresGrad = false): Tensor {
  const c = Tensor.from(t.values(), t.shape, dtype);
  c.requiresGrad = requiresGrad;
  return c;
}

/** Marks and returns the tensor as a leaf that requires grad. */
export function leaf(t: Tensor): Tensor {
  t.requiresGrad = true;
  return t;
}

export function labels(values: number[]): Int32Array {
  return Int32Array.from(values);
}

export interface CloseOptions {
  rtol?: number;
  atol?: number;
  /** Prefix of the failure message. */
  msg?: string;
}

/**
 * Elementwise |a - e| <= atol + rtol * max(|a|, |e|). On failure names the worst element (index,
 * both values) and how many are out of tolerance. NaN matches only NaN.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions = {}): void {
  const rtol = opts.rtol ?? 1e-12;
  const atol = opts.atol ?? 1e-12;
  const prefix = opts.msg ? `${opts.msg}: ` : '';
  assert.equal(actual.length, expected.length, `${prefix}length ${actual.length} != expected ${expected.length}`);
  let bad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(a) || Number.isNaN(e)) {
      if (Number.isNaN(a) && Number.isNaN(e)) continue;
      bad++;
      if (worstExcess < Infinity) {
        worstExcess = Infinity;
        worst = i;
      }
      continue;
    }
    if (a === e) continue; // also equal infinities
    const diff = Math.abs(a - e);
    const tol = atol + rtol * Math.max(Math.abs(a), Math.abs(e));
    if (!(diff <= tol)) {
      bad++;
      const excess = diff / tol;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    const a = actual[worst];
    const e = expected[worst];
    assert.fail(
      `${prefix}${bad} of ${actual.length} elements differ; worst at [${worst}]: actual ${a}, expected ${e}, ` +
        `|diff| ${Math.abs(a - e).toExponential(3)} (rtol ${rtol}, atol ${atol})`,
    );
  }
}

export function assertShape(t: Tensor, shape: readonly number[], msg = ''): void {
  assert.deepEqual([...t.shape], [...shape], `${msg}shape ${fmtShape(t.shape)} != expected ${fmtShape(shape)}`);
}

/** Bitwise equality of two float buffers (distinguishes -0 from 0 and compares NaN payload-free). */
export function assertBitwiseEqual(a: ArrayLike<number>, b: ArrayLike<number>, msg = ''): void {
  assert.equal(a.length, b.length, `${msg}: lengths differ`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${msg}: element ${i} differs: ${a[i]} vs ${b[i]}`);
  }
}

/** max |ours − ref| / max |ref|: the error on the scale of the reference tensor (comparisons with transformers). */
export function relError(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / (scale || 1);
}
