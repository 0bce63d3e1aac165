import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import {
  Tensor, abs, add, affine, backward, div, exp, gelu, geluErf, log, mul, neg, pow, powScalar, relu, sigmoid, sqrt, sub,
  tanh,
} from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, seedFor, tensor, valuesOf, zeros } from '../../helpers/on_device.js';
import { Rng, assertShape, awayFromZero, leaf, randn, uniform } from '../../helpers/tensors.js';

type Bin = (a: Tensor | number, b: Tensor | number) => Tensor;
const powT: Bin = (a, b) => pow(a as Tensor, b);

/** Operand generators per op: the divisor stays away from 0, pow's base positive. */
const BINARY: { name: string; fn: Bin; lhs: (s: number[], r: Rng) => Tensor; rhs: (s: number[], r: Rng) => Tensor }[] = [
  { name: 'add', fn: add, lhs: (s, r) => randn(s, r), rhs: (s, r) => randn(s, r) },
  { name: 'sub', fn: sub, lhs: (s, r) => randn(s, r), rhs: (s, r) => randn(s, r) },
  { name: 'mul', fn: mul, lhs: (s, r) => randn(s, r), rhs: (s, r) => randn(s, r) },
  { name: 'div', fn: div, lhs: (s, r) => randn(s, r), rhs: (s, r) => awayFromZero(s, r, 0.5, 1.5) },
  { name: 'pow', fn: powT, lhs: (s, r) => uniform(s, r, 0.5, 1.5), rhs: (s, r) => uniform(s, r, -1.5, 1.5) },
];

/** Shape pairs: same, one-sided broadcasts, both sides broadcast, 0-d operand on either side. */
const SHAPES: [number[], number[]][] = [
  [[2, 3], [2, 3]],
  [[2, 3], [3]],
  [[3], [2, 3]],
  [[2, 3], [2, 1]],
  [[2, 1, 3], [4, 1]],
  [[4, 1], [2, 1, 3]],
  [[], [2, 3]],
  [[2, 3], []],
  [[], []],
];

describe('binary ops: gradcheck (float64)', () => {
  for (const op of BINARY) {
    for (const [sa, sb] of SHAPES) {
      it(`${op.name} ${JSON.stringify(sa)} with ${JSON.stringify(sb)}`, async () => {
        const r = new Rng(sa.length * 10 + sb.length);
        await gradcheckOnBackend(op.fn, [op.lhs(sa, r), op.rhs(sb, r)], { name: op.name });
      });
    }
    it(`${op.name}: only the left operand requires grad`, async () => {
      const r = new Rng(7);
      await gradcheckOnBackend(op.fn, [op.lhs([2, 3], r), op.rhs([3], r)], { name: op.name, wrt: [0] });
    });
    it(`${op.name}: only the right operand requires grad`, async () => {
      const r = new Rng(8);
      await gradcheckOnBackend(op.fn, [op.lhs([2, 1], r), op.rhs([2, 3], r)], { name: op.name, wrt: [1] });
    });
    it(`${op.name}: number as right operand`, async () => {
      const r = new Rng(9);
      const c = op.name === 'pow' ? 1.7 : op.name === 'div' ? -0.8 : 2.5;
      await gradcheckOnBackend((a) => op.fn(a, c), [op.lhs([2, 3], r)], { name: op.name });
    });
    if (op.name !== 'pow') {
      it(`${op.name}: number as left operand`, async () => {
        const r = new Rng(10);
        await gradcheckOnBackend((b) => op.fn(-1.5, b), [op.rhs([3, 2], r)], { name: op.name });
      });
    }
    it(`${op.name}: the same tensor as both operands`, async () => {
      const r = new Rng(11);
      const x = op.name === 'div' || op.name === 'pow' ? uniform([2, 3], r, 0.5, 1.5) : randn([2, 3], r);
      await gradcheckOnBackend((a) => op.fn(a, a), [x], { name: op.name });
    });
  }
});

describe('binary ops: forward values', () => {
  const m = (): Tensor => tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const row = (): Tensor => tensor([10, 20, 30], [3]);
  const col = (): Tensor => tensor([2, 4], [2, 1]);

  it('add broadcasts a row and a scalar', async () => {
    const y = add(m(), row());
    assertShape(y, [2, 3]);
    assertValues(await valuesOf(y), [11, 22, 33, 14, 25, 36]);
    assertValues(await valuesOf(add(m(), 1)), [2, 3, 4, 5, 6, 7]);
    assertValues(await valuesOf(add(1, m())), [2, 3, 4, 5, 6, 7]);
  });
  it('sub is ordered, with numbers on either side', async () => {
    assertValues(await valuesOf(sub(m(), col())), [-1, 0, 1, 0, 1, 2]);
    assertValues(await valuesOf(sub(10, m())), [9, 8, 7, 6, 5, 4]);
    assertValues(await valuesOf(sub(m(), 10)), [-9, -8, -7, -6, -5, -4]);
  });
  it('mul and div broadcast a column', async () => {
    assertValues(await valuesOf(mul(m(), col())), [2, 4, 6, 16, 20, 24]);
    assertValues(await valuesOf(div(m(), col())), [0.5, 1, 1.5, 1, 1.25, 1.5]);
    assertValues(await valuesOf(div(1, tensor([2, 4], [2]))), [0.5, 0.25]);
  });
  it('both sides broadcast: [2, 1] op [3] -> [2, 3]', async () => {
    const y = add(col(), row());
    assertShape(y, [2, 3]);
    assertValues(await valuesOf(y), [12, 22, 32, 14, 24, 34]);
  });
  it('pow with a tensor exponent', async () => {
    const y = pow(tensor([2, 3, 4], [3]), tensor([3, 2, 0.5], [3]));
    assertValues(await valuesOf(y), [8, 9, 2]);
  });
  it('float32 in, float32 out', async () => {
    const y = add(tensor([1, 2], [2], 'float32'), 0.5);
    assert.equal(y.dtype, 'float32');
    assertValues(await valuesOf(y), [1.5, 2.5], undefined, 'float32');
  });
  it('hand-computed gradients of mul with broadcasting', async () => {
    const a = leaf(tensor([1, 2, 3, 4, 5, 6], [2, 3]));
    const b = leaf(tensor([10, 20, 30], [3]));
    const y = mul(a, b);
    backward(y, seedFor(y, [1, 1, 1, 1, 1, 1]));
    assertValues(await gradOf(a), [10, 20, 30, 10, 20, 30]);
    assertValues(await gradOf(b), [5, 7, 9]);
  });
});

describe('binary ops: shape errors name the op and the shapes', () => {
  for (const op of BINARY) {
    it(op.name, async () => {
      const a = zeros([2, 3], 'float64');
      const b = zeros([4], 'float64');
      assert.throws(() => op.fn(a, b), new RegExp(`^ShapeError: ${op.name}: .*broadcast.*\\[2, 3\\], \\[4\\]`));
      assert.throws(() => op.fn(zeros([2, 3, 1]), zeros([5, 2])), new RegExp(`${op.name}: .*\\[2, 3, 1\\], \\[5, 2\\]`));
    });
  }
});

const UNARY: { name: string; fn: (x: Tensor) => Tensor; input: (r: Rng) => Tensor }[] = [
  { name: 'neg', fn: neg, input: (r) => randn([3, 4], r) },
  { name: 'exp', fn: exp, input: (r) => randn([3, 4], r) },
  { name: 'log', fn: log, input: (r) => uniform([3, 4], r, 0.3, 3) },
  { name: 'sqrt', fn: sqrt, input: (r) => uniform([3, 4], r, 0.3, 3) },
  { name: 'relu', fn: relu, input: (r) => awayFromZero([3, 4], r, 0.1, 2) },
  { name: 'gelu', fn: gelu, input: (r) => randn([3, 4], r, 'float64', 2) },
  { name: 'geluErf', fn: geluErf, input: (r) => randn([4, 5], r, 'float64', 3) },
  { name: 'tanh', fn: tanh, input: (r) => randn([3, 4], r, 'float64', 1.5) },
  { name: 'sigmoid', fn: sigmoid, input: (r) => randn([3, 4], r, 'float64', 2) },
  { name: 'abs', fn: abs, input: (r) => awayFromZero([3, 4], r, 0.1, 2) },
  { name: 'powScalar(2)', fn: (x) => powScalar(x, 2), input: (r) => randn([3, 4], r) },
  { name: 'powScalar(3)', fn: (x) => powScalar(x, 3), input: (r) => randn([3, 4], r) },
  { name: 'powScalar(0.5)', fn: (x) => powScalar(x, 0.5), input: (r) => uniform([3, 4], r, 0.3, 3) },
  { name: 'powScalar(-1.5)', fn: (x) => powScalar(x, -1.5), input: (r) => uniform([3, 4], r, 0.5, 2) },
  { name: 'powScalar(0)', fn: (x) => powScalar(x, 0), input: (r) => awayFromZero([3, 4], r) },
  { name: 'pow(x, number)', fn: (x) => pow(x, 3), input: (r) => randn([3, 4], r) },
  { name: 'affine', fn: (x) => affine(x, -1.7, 0.3), input: (r) => randn([3, 4], r) },
  { name: 'affine (no shift)', fn: (x) => affine(x, 2.5), input: (r) => randn([3, 4], r) },
];

describe('unary ops: gradcheck (float64)', () => {
  for (const op of UNARY) {
    it(op.name, async () => {
      await gradcheckOnBackend(op.fn, [op.input(new Rng(42))], { name: op.name });
    });
    it(`${op.name} on a 0-d tensor`, async () => {
      const x = op.input(new Rng(3));
      await gradcheckOnBackend(op.fn, [Tensor.from([x.values()[0]], [], 'float64')], { name: op.name });
    });
  }
});

describe('unary ops: forward values', () => {
  const t = (v: number[]): Tensor => tensor(v, [v.length]);
  const values = (y: Tensor): Promise<number[]> => valuesOf(y);
  it('closed forms', async () => {
    assertValues(await values(neg(t([1, -2, 0]))), [-1, 2, -0], {});
    assertValues(await values(exp(t([0, 1, -1]))), [1, Math.E, 1 / Math.E], { rtol: 1e-15 });
    assertValues(await values(log(t([1, Math.E, 0.5]))), [0, 1, -Math.LN2], { rtol: 1e-15 });
    assertValues(await values(sqrt(t([4, 9, 0.25]))), [2, 3, 0.5]);
    assertValues(await values(relu(t([-1, 0, 2.5]))), [0, 0, 2.5]);
    assertValues(await values(abs(t([-1.5, 0, 2]))), [1.5, 0, 2]);
    assertValues(await values(tanh(t([0, 0.5, -0.5]))), [0, 0.46211715726000974, -0.46211715726000974], { rtol: 1e-15 });
    assertValues(await values(sigmoid(t([0, 2, -2]))), [0.5, 0.8807970779778823, 0.11920292202211755], { rtol: 1e-15 });
    assertValues(await values(affine(t([1, 2]), 3, 1)), [4, 7]);
    assertValues(await values(powScalar(t([-2, 3]), 2)), [4, 9]);
    assertValues(await values(powScalar(t([-2, 3]), 3)), [-8, 27]);
    assertValues(await values(powScalar(t([4, 0.25]), 0.5)), [2, 0.5]);
  });
  it('gelu is the tanh approximation (torch approximate="tanh")', async () => {
    // torch.nn.functional.gelu(torch.tensor([1., -1., 0.5, 2.], dtype=torch.float64), approximate='tanh')
    assertValues(await values(gelu(t([1, -1, 0.5, 2, 0]))), [0.8411919906082768, -0.15880800939172324, 0.34571400982514394, 1.954597694087775, 0], { rtol: 1e-14 });
  });
  it('geluErf is the exact x·Φ(x) (torch\'s default gelu), in the lower tail and across the erf/erfc seam at |x| = 2√2', async () => {
    // torch.nn.functional.gelu(torch.tensor([1., -0.5, 2., -3., 0., 6., -6.5, -2.82, -2.83, 2.84], dtype=torch.float64)),
    // except at -6.5, where torch's 0.5·x·(1 + erf) cancels (-2.610399119e-10); mpmath's erfc at 30 digits gives:
    const want = [0.841344746068543, -0.15426876936299344, 1.9544997361036416, -0.00404969409489031, 0, 5.999999994080474,
      -2.6104003795084266e-10, -0.0067713345772136705, -0.006586542585050303, 2.83359387819602];
    assertValues(await values(geluErf(t([1, -0.5, 2, -3, 0, 6, -6.5, -2.82, -2.83, 2.84]))), want, { rtol: 1e-13, atol: 1e-20 });
  });
  it('sigmoid saturates without NaN', async () => {
    const y = await values(sigmoid(t([-800, 800])));
    assertValues(y, [0, 1]);
  });
  it('hand-computed gradients at the kinks: relu and abs give 0 at 0', async () => {
    const x = leaf(t([-1, 0, 2]));
    const y = relu(x);
    backward(y, seedFor(y, [1, 1, 1]));
    assertValues(await gradOf(x), [0, 0, 1]);
    const z = leaf(t([-1, 0, 2]));
    const w = abs(z);
    backward(w, seedFor(w, [1, 1, 1]));
    assertValues(await gradOf(z), [-1, 0, 1]);
  });
  it('powScalar(x, 0) and pow(0, 0) have a zero (not NaN) gradient at x = 0', async () => {
    const x = leaf(t([0, 2]));
    const y = powScalar(x, 0);
    backward(y, seedFor(y, [1, 1]));
    assertValues(await gradOf(x), [0, 0]);
    const a = leaf(t([0, 2]));
    const b = leaf(t([0, 0]));
    const z = pow(a, b);
    backward(z, seedFor(z, [1, 1]));
    assertValues(await gradOf(a), [0, 0]);
    assertValues(await gradOf(b), [0, Math.log(2)]);
  });
  it('the output of an op on a no-grad input does not require grad', () => {
    const y = exp(t([1, 2]));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
  });
});
