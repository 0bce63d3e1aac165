import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import {
  Tensor, abs, add, affine, backward, div, exp, gelu, geluErf, log, mul, neg, pow, powScalar, relu, sigmoid, sqrt, sub,
  tanh,
} from '../../../src/tensor/index.js';
import { gradcheck } from '../../helpers/gradcheck.js';
import { Rng, assertClose, assertShape, awayFromZero, leaf, randn, uniform } from '../../helpers/tensors.js';

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
      it(`${op.name} ${JSON.stringify(sa)} with ${JSON.stringify(sb)}`, () => {
        const r = new Rng(sa.length * 10 + sb.length);
        gradcheck(op.fn, [op.lhs(sa, r), op.rhs(sb, r)], { name: op.name });
      });
    }
    it(`${op.name}: only the left operand requires grad`, () => {
      const r = new Rng(7);
      gradcheck(op.fn, [op.lhs([2, 3], r), op.rhs([3], r)], { name: op.name, wrt: [0] });
    });
    it(`${op.name}: only the right operand requires grad`, () => {
      const r = new Rng(8);
      gradcheck(op.fn, [op.lhs([2, 1], r), op.rhs([2, 3], r)], { name: op.name, wrt: [1] });
    });
    it(`${op.name}: number as right operand`, () => {
      const r = new Rng(9);
      const c = op.name === 'pow' ? 1.7 : op.name === 'div' ? -0.8 : 2.5;
      gradcheck((a) => op.fn(a, c), [op.lhs([2, 3], r)], { name: op.name });
    });
    if (op.name !== 'pow') {
      it(`${op.name}: number as left operand`, () => {
        const r = new Rng(10);
        gradcheck((b) => op.fn(-1.5, b), [op.rhs([3, 2], r)], { name: op.name });
      });
    }
    it(`${op.name}: the same tensor as both operands`, () => {
      const r = new Rng(11);
      const x = op.name === 'div' || op.name === 'pow' ? uniform([2, 3], r, 0.5, 1.5) : randn([2, 3], r);
      gradcheck((a) => op.fn(a, a), [x], { name: op.name });
    });
  }
});

describe('binary ops: forward values', () => {
  const m = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3], 'float64');
  const row = Tensor.from([10, 20, 30], [3], 'float64');
  const col = Tensor.from([2, 4], [2, 1], 'float64');

  it('add broadcasts a row and a scalar', () => {
    const y = add(m, row);
    assertShape(y, [2, 3]);
    assert.deepEqual(y.toArray(), [11, 22, 33, 14, 25, 36]);
    assert.deepEqual(add(m, 1).toArray(), [2, 3, 4, 5, 6, 7]);
    assert.deepEqual(add(1, m).toArray(), [2, 3, 4, 5, 6, 7]);
  });
  it('sub is ordered, with numbers on either side', () => {
    assert.deepEqual(sub(m, col).toArray(), [-1, 0, 1, 0, 1, 2]);
    assert.deepEqual(sub(10, m).toArray(), [9, 8, 7, 6, 5, 4]);
    assert.deepEqual(sub(m, 10).toArray(), [-9, -8, -7, -6, -5, -4]);
  });
  it('mul and div broadcast a column', () => {
    assert.deepEqual(mul(m, col).toArray(), [2, 4, 6, 16, 20, 24]);
    assert.deepEqual(div(m, col).toArray(), [0.5, 1, 1.5, 1, 1.25, 1.5]);
    assert.deepEqual(div(1, Tensor.from([2, 4], [2], 'float64')).toArray(), [0.5, 0.25]);
  });
  it('both sides broadcast: [2, 1] op [3] -> [2, 3]', () => {
    const y = add(col, row);
    assertShape(y, [2, 3]);
    assert.deepEqual(y.toArray(), [12, 22, 32, 14, 24, 34]);
  });
  it('pow with a tensor exponent', () => {
    const y = pow(Tensor.from([2, 3, 4], [3], 'float64'), Tensor.from([3, 2, 0.5], [3], 'float64'));
    assert.deepEqual(y.toArray(), [8, 9, 2]);
  });
  it('float32 in, float32 out', () => {
    const y = add(Tensor.from([1, 2], [2]), 0.5);
    assert.equal(y.dtype, 'float32');
    assert.deepEqual(y.toArray(), [1.5, 2.5]);
  });
  it('hand-computed gradients of mul with broadcasting', () => {
    const a = leaf(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3], 'float64'));
    const b = leaf(Tensor.from([10, 20, 30], [3], 'float64'));
    backward(mul(a, b), new Float64Array([1, 1, 1, 1, 1, 1]));
    assert.deepEqual(Array.from(a.gradValues()!), [10, 20, 30, 10, 20, 30]);
    assert.deepEqual(Array.from(b.gradValues()!), [5, 7, 9]);
  });
});

describe('binary ops: shape errors name the op and the shapes', () => {
  for (const op of BINARY) {
    it(op.name, () => {
      const a = Tensor.zeros([2, 3], 'float64');
      const b = Tensor.zeros([4], 'float64');
      assert.throws(() => op.fn(a, b), new RegExp(`^ShapeError: ${op.name}: .*broadcast.*\\[2, 3\\], \\[4\\]`));
      assert.throws(() => op.fn(Tensor.zeros([2, 3, 1]), Tensor.zeros([5, 2])), new RegExp(`${op.name}: .*\\[2, 3, 1\\], \\[5, 2\\]`));
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
    it(op.name, () => {
      gradcheck(op.fn, [op.input(new Rng(42))], { name: op.name });
    });
    it(`${op.name} on a 0-d tensor`, () => {
      const x = op.input(new Rng(3));
      gradcheck(op.fn, [Tensor.from([x.values()[0]], [], 'float64')], { name: op.name });
    });
  }
});

describe('unary ops: forward values', () => {
  const t = (v: number[]): Tensor => Tensor.from(v, [v.length], 'float64');
  it('closed forms', () => {
    assertClose(neg(t([1, -2, 0])).toArray(), [-1, 2, -0]);
    assertClose(exp(t([0, 1, -1])).toArray(), [1, Math.E, 1 / Math.E], { rtol: 1e-15 });
    assertClose(log(t([1, Math.E, 0.5])).toArray(), [0, 1, -Math.LN2], { rtol: 1e-15 });
    assert.deepEqual(sqrt(t([4, 9, 0.25])).toArray(), [2, 3, 0.5]);
    assert.deepEqual(relu(t([-1, 0, 2.5])).toArray(), [0, 0, 2.5]);
    assert.deepEqual(abs(t([-1.5, 0, 2])).toArray(), [1.5, 0, 2]);
    assertClose(tanh(t([0, 0.5, -0.5])).toArray(), [0, 0.46211715726000974, -0.46211715726000974], { rtol: 1e-15 });
    assertClose(sigmoid(t([0, 2, -2])).toArray(), [0.5, 0.8807970779778823, 0.11920292202211755], { rtol: 1e-15 });
    assert.deepEqual(affine(t([1, 2]), 3, 1).toArray(), [4, 7]);
    assert.deepEqual(powScalar(t([-2, 3]), 2).toArray(), [4, 9]);
    assert.deepEqual(powScalar(t([-2, 3]), 3).toArray(), [-8, 27]);
    assert.deepEqual(powScalar(t([4, 0.25]), 0.5).toArray(), [2, 0.5]);
  });
  it('gelu is the tanh approximation (torch approximate="tanh")', () => {
    // torch.nn.functional.gelu(torch.tensor([1., -1., 0.5, 2.], dtype=torch.float64), approximate='tanh')
    assertClose(gelu(t([1, -1, 0.5, 2, 0])).toArray(), [0.8411919906082768, -0.15880800939172324, 0.34571400982514394, 1.954597694087775, 0], { rtol: 1e-14 });
  });
  it('geluErf is the exact x·Φ(x) (torch\'s default gelu), in the lower tail and across the erf/erfc seam at |x| = 2√2', () => {
    // torch.nn.functional.gelu(torch.tensor([1., -0.5, 2., -3., 0., 6., -6.5, -2.82, -2.83, 2.84], dtype=torch.float64)),
    // except at -6.5, where torch's 0.5·x·(1 + erf) cancels (-2.610399119e-10); mpmath's erfc at 30 digits gives:
    const want = [0.841344746068543, -0.15426876936299344, 1.9544997361036416, -0.00404969409489031, 0, 5.999999994080474,
      -2.6104003795084266e-10, -0.0067713345772136705, -0.006586542585050303, 2.83359387819602];
    assertClose(geluErf(t([1, -0.5, 2, -3, 0, 6, -6.5, -2.82, -2.83, 2.84])).toArray(), want, { rtol: 1e-13, atol: 1e-20 });
  });
  it('sigmoid saturates without NaN', () => {
    const y = sigmoid(t([-800, 800])).toArray();
    assert.deepEqual(y, [0, 1]);
  });
  it('hand-computed gradients at the kinks: relu and abs give 0 at 0', () => {
    const x = leaf(t([-1, 0, 2]));
    backward(relu(x), new Float64Array([1, 1, 1]));
    assert.deepEqual(Array.from(x.gradValues()!), [0, 0, 1]);
    const y = leaf(t([-1, 0, 2]));
    backward(abs(y), new Float64Array([1, 1, 1]));
    assert.deepEqual(Array.from(y.gradValues()!), [-1, 0, 1]);
  });
  it('powScalar(x, 0) and pow(0, 0) have a zero (not NaN) gradient at x = 0', () => {
    const x = leaf(t([0, 2]));
    backward(powScalar(x, 0), new Float64Array([1, 1]));
    assert.deepEqual(Array.from(x.gradValues()!), [0, 0]);
    const a = leaf(t([0, 2]));
    const b = leaf(t([0, 0]));
    backward(pow(a, b), new Float64Array([1, 1]));
    assert.deepEqual(Array.from(a.gradValues()!), [0, 0]);
    assert.deepEqual(Array.from(b.gradValues()!), [0, Math.log(2)]);
  });
  it('the output of an op on a no-grad input does not require grad', () => {
    const y = exp(t([1, 2]));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
  });
});
