/**
 * Finite-difference gradient check in float64 — a helper for the op tests, not a test file.
 *
 * (Why here: `node --test dist/test/tensor/` runs only files named *.test.js, *-test.js, *_test.js,
 * test-*.js or test.js plus every .js file below a directory named `test` *inside* the argument;
 * this file lives outside dist/test/tensor and matches none of the name patterns. A bare
 * `node --test` or `node --test dist/test/` treats every .js below dist/test as a test file — this
 * module then only loads, defines no tests and passes trivially.)
 *
 * The op under test, f(inputs), is reduced to a scalar with a fixed random projection
 * L = sum(f(inputs) * R). Analytic gradients come from `backward(out, R)` (the gradient of L with
 * respect to `out` is exactly R, so no other op enters the check); numeric ones from central
 * differences of L for every element of every checked input.
 */
import assert from 'node:assert/strict';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import type { Buf } from '../../src/tensor/backend.js';
import { fmtShape, stridesOf } from '../../src/tensor/shape.js';
import { backend } from '../../src/tensor/dispatch.js';
import { CPU, deviceMemory, type Device } from '../../src/tensor/storage.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { assertClose } from './tensors.js';
import { parityTolerance } from './tolerance.js';

export interface GradcheckOptions {
  /** Central-difference step (default 1e-6). */
  eps?: number;
  /** Relative tolerance (default 1e-6). */
  rtol?: number;
  /** Absolute tolerance (default 1e-8). */
  atol?: number;
  /** Seed of the projection R (default 1234). */
  seed?: number;
  /** Indices of the inputs to differentiate (default: all). The others get requiresGrad = false. */
  wrt?: readonly number[];
  /** Label for failure messages. */
  name?: string;
}

export interface GradcheckResult {
  /** Number of input elements compared. */
  checked: number;
  /** Largest |analytic - numeric| / tolerance seen (< 1 when passing). */
  worstRatio: number;
}

function multiIndex(flat: number, shape: readonly number[]): number[] {
  const s = stridesOf(shape);
  return s.map((st, d) => Math.floor(flat / st) % shape[d]);
}

function dot(a: Buf, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s += a[i] * b[i];
  return s;
}

/** The fixed random projection R that reduces an output to the scalar sum(out · R). */
function projection(n: number, seed = 1234): Float64Array {
  const rng = new Rng(seed);
  const R = new Float64Array(n);
  for (let i = 0; i < n; i++) R[i] = rng.normal();
  return R;
}

/**
 * Checks the analytic gradients of `fn` against central differences. Every input must be float64.
 * `fn` must be deterministic (build any Rng it needs inside, from a fixed seed) and must not keep
 * state between calls that changes its output. Throws an AssertionError naming the worst element.
 */
export function gradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-6;
  const rtol = opts.rtol ?? 1e-6;
  const atol = opts.atol ?? 1e-8;
  const label = opts.name ? `gradcheck(${opts.name})` : 'gradcheck';
  const wrt = opts.wrt ?? inputs.map((_, i) => i);

  inputs.forEach((t, i) => {
    assert.equal(t.dtype, 'float64', `${label}: input ${i} must be float64, is ${t.dtype}`);
    t.requiresGrad = wrt.includes(i);
    t.grad = null;
    t.gradFn = null;
  });
  const before = inputs.map((t) => Float64Array.from(t.values()));

  // ---- analytic ----
  const out = fn(...inputs);
  assert.equal(out.dtype, 'float64', `${label}: output must be float64, is ${out.dtype}`);
  inputs.forEach((t, i) => {
    for (let j = 0; j < t.size; j++) {
      if (!Object.is(t.values()[j], before[i][j])) assert.fail(`${label}: the forward pass modified input ${i} at element ${j}`);
    }
  });
  const R = projection(out.size, opts.seed);
  assert.ok(out.requiresGrad, `${label}: output does not require grad`);
  backward(out, R);
  const analytic = inputs.map((t, i) => {
    if (!wrt.includes(i)) {
      assert.equal(t.grad, null, `${label}: input ${i} ${fmtShape(t.shape)} does not require grad but received a gradient`);
      return null;
    }
    return t.grad ? Float64Array.from(t.grad.readSync()) : new Float64Array(t.size);
  });

  // ---- numeric ----
  const evalL = (): number => noGrad(() => dot(fn(...inputs).values(), R));
  let checked = 0;
  let bad = 0;
  let worstRatio = 0;
  let worst = { input: -1, index: -1, analytic: 0, numeric: 0, tol: 0 };
  for (const i of wrt) {
    const x = inputs[i].values();
    const ga = analytic[i]!;
    for (let j = 0; j < x.length; j++) {
      const v = x[j];
      x[j] = v + eps;
      const lp = evalL();
      x[j] = v - eps;
      const lm = evalL();
      x[j] = v;
      const num = (lp - lm) / (2 * eps);
      const an = ga[j];
      const tol = atol + rtol * Math.max(Math.abs(an), Math.abs(num));
      const diff = Math.abs(an - num);
      const ratio = Number.isNaN(diff) ? Infinity : diff / tol;
      checked++;
      if (!(diff <= tol)) bad++;
      if (ratio > worstRatio || (ratio === Infinity && worst.input < 0)) {
        worstRatio = ratio;
        worst = { input: i, index: j, analytic: an, numeric: num, tol };
      }
    }
  }
  if (bad > 0) {
    const t = inputs[worst.input];
    assert.fail(
      `${label}: ${bad} of ${checked} gradient elements out of tolerance; worst: input ${worst.input} ` +
        `${fmtShape(t.shape)} element ${worst.index} at [${multiIndex(worst.index, t.shape).join(', ')}]: ` +
        `analytic ${worst.analytic}, numeric ${worst.numeric}, |diff| ${Math.abs(worst.analytic - worst.numeric).toExponential(3)} ` +
        `> tol ${worst.tol.toExponential(3)} (rtol ${rtol}, atol ${atol}, eps ${eps})`,
    );
  }
  return { checked, worstRatio };
}

/**
 * The gradient check of the backend under test (every_backend.ts selects it). Finite differences
 * need float64, which only js computes: gradcheck() runs there, on the float64 inputs. A backend
 * that does not compute float64 (native, webgpu) then runs `fn` on float32 copies of the inputs on
 * its own device; its output and its gradients of sum(out · R) must match the float64 ones (the
 * reference, just checked) within the parity bound (tolerance.ts). Values are read with await.
 * `fn` must make whatever it needs besides its inputs on its inputs' device and in their dtype.
 */
export async function gradcheckOnBackend(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): Promise<GradcheckResult> {
  const result = gradcheck(fn, inputs, opts);
  const b = backend();
  if (!b.dtypes.includes('float64')) await matchesFloat64(b.device, fn, inputs, opts);
  return result;
}

/** fn on float32 copies of the (just gradchecked) float64 inputs on `device`, against their output and gradients. */
async function matchesFloat64(device: Device, fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions): Promise<void> {
  const label = `${opts.name ? `gradcheck(${opts.name})` : 'gradcheck'} on ${backend().name}`;
  const expected = noGrad(() => Float64Array.from(fn(...inputs).values()));
  const copies = inputs.map((t) => {
    const c = Tensor.from(t.values(), t.shape, 'float32', device);
    c.requiresGrad = t.requiresGrad;
    return c;
  });
  const out = fn(...copies);
  assert.equal(out.dtype, 'float32', `${label}: output must be float32, is ${out.dtype}`);
  assert.equal(out.device, device, `${label}: output is on ${out.device}, not ${device}`);
  assertClose(await out.read(), expected, { ...parityTolerance(expected), msg: `${label}: forward` });
  const R = Float32Array.from(projection(out.size, opts.seed));
  backward(out, device === CPU ? R : deviceMemory(device).fromHost(R));
  for (let i = 0; i < inputs.length; i++) {
    const want = inputs[i].grad;
    const got = copies[i].grad;
    assert.equal(got === null, want === null, `${label}: input ${i} has a gradient on one side only`);
    if (want && got) {
      const ref = want.readSync();
      assertClose(await got.read(), ref, { ...parityTolerance(ref), msg: `${label}: gradient of input ${i}` });
    }
  }
}
