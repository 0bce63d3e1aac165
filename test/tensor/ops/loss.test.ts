import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { Tensor, affine, backward, crossEntropy, mseLoss } from '../../../src/tensor/index.js';
import { gradcheck } from '../../helpers/gradcheck.js';
import { Rng, assertClose, labels, leaf, randn } from '../../helpers/tensors.js';

describe('crossEntropy', () => {
  it('gradcheck [4, 5]', () => {
    gradcheck((x) => crossEntropy(x, labels([0, 4, 2, 2])), [randn([4, 5], new Rng(1), 'float64', 2)], { name: 'crossEntropy' });
  });
  it('gradcheck with ignored rows (label -1)', () => {
    gradcheck((x) => crossEntropy(x, labels([1, -1, 3, -1, 0])), [randn([5, 4], new Rng(2), 'float64', 2)], { name: 'crossEntropy ignore' });
  });
  it('gradcheck through an intermediate with an upstream gradient other than 1 (the in-place path scales)', () => {
    gradcheck((x) => affine(crossEntropy(affine(x, 2, 0), labels([2, -1, 0, 4])), 3, 0.5), [randn([4, 5], new Rng(4), 'float64', 2)], { name: 'crossEntropy scaled' });
  });
  it('gradcheck 3-d logits [2, 3, 4] (one label per row)', () => {
    gradcheck((x) => crossEntropy(x, labels([0, 1, 2, 3, -1, 1])), [randn([2, 3, 4], new Rng(3))], { name: 'crossEntropy 3-d' });
  });
  it('known value: -log softmax([1, 2, 3])[2] = 0.4076059644', () => {
    const y = crossEntropy(Tensor.from([1, 2, 3], [1, 3], 'float64'), labels([2]));
    assert.equal(y.ndim, 0);
    assertClose([y.item()], [0.40760596444438013], { rtol: 1e-14 });
    // mean over counted rows only: the ignored row changes nothing
    const z = crossEntropy(Tensor.from([1, 2, 3, 9, 9, 9], [2, 3], 'float64'), labels([2, -1]));
    assertClose([z.item()], [0.40760596444438013], { rtol: 1e-14 });
    // uniform logits: log(C)
    assertClose([crossEntropy(Tensor.zeros([3, 4], 'float64'), labels([0, 1, 3])).item()], [Math.log(4)], { rtol: 1e-14 });
  });
  it('hand-computed gradient: (softmax - onehot) / rows, nothing for ignored rows', () => {
    const x = leaf(Tensor.from([0, 0, 0, 5, 5, 5], [2, 3], 'float64'));
    backward(crossEntropy(x, labels([1, -1])));
    assertClose(Array.from(x.gradValues()!), [1 / 3, -2 / 3, 1 / 3, 0, 0, 0], { rtol: 1e-14 });
  });
  it('stable for large logits', () => {
    const y = crossEntropy(Tensor.from([1000, 0, -1000], [1, 3]), labels([2]));
    assert.ok(Number.isFinite(y.item()));
    assertClose([y.item()], [2000], { rtol: 1e-6 });
  });
  it('all rows ignored: loss 0 and a zero gradient (no NaN)', () => {
    const x = leaf(Tensor.from([1, 2, 3, 4], [2, 2], 'float64'));
    const y = crossEntropy(x, labels([-1, -1]));
    assert.equal(y.item(), 0);
    backward(y);
    for (const g of x.gradValues() ?? []) assert.equal(g, 0);
  });
  it('int32 tensor labels give the loss and gradient host labels give', () => {
    const x = Tensor.from([1, 2, 3, 0.5, -1, 2, 0, 0, 0], [3, 3], 'float64');
    const a = leaf(x.detach());
    const b = leaf(x.detach());
    const la = crossEntropy(a, labels([2, -1, 0]));
    const lb = crossEntropy(b, Tensor.fromHost(Int32Array.of(2, -1, 0), [3]));
    assert.equal(lb.item(), la.item());
    backward(la);
    backward(lb);
    assert.deepEqual(Array.from(b.gradValues()!), Array.from(a.gradValues()!));
    assert.throws(() => crossEntropy(x, Tensor.fromHost(Int32Array.of(2, 3, 0), [3])), /crossEntropy: label 3 at row 1 is outside \[0, 3\)/);
  });
  it('errors name the op and the shapes', () => {
    assert.throws(() => crossEntropy(Tensor.zeros([3, 4]), labels([0, 1])), /^ShapeError: crossEntropy: expected 3 labels, got 2 \(shapes \[3, 4\], \[2\]\)/);
    assert.throws(() => crossEntropy(Tensor.zeros([2, 4]), labels([0, 4])), /crossEntropy: label 4 at row 1 is outside \[0, 4\)/);
    assert.throws(() => crossEntropy(Tensor.zeros([2, 4]), labels([-2, 0])), /crossEntropy: label -2 at row 0/);
  });
});

describe('mseLoss', () => {
  it('gradcheck (both arguments)', () => {
    const r = new Rng(4);
    gradcheck(mseLoss, [randn([3, 4], r), randn([3, 4], r)], { name: 'mseLoss' });
    gradcheck(mseLoss, [randn([5], r), randn([5], r)], { name: 'mseLoss target frozen', wrt: [0] });
    gradcheck(mseLoss, [randn([2, 2], r), randn([2, 2], r)], { name: 'mseLoss pred frozen', wrt: [1] });
    gradcheck((x) => mseLoss(x, x), [randn([3], r)], { name: 'mseLoss(x, x)' });
  });
  it('known value and gradient', () => {
    const p = leaf(Tensor.from([1, 2, 3, 4], [2, 2], 'float64'));
    const t = Tensor.from([1, 0, 3, 8], [2, 2], 'float64');
    const y = mseLoss(p, t);
    assert.equal(y.item(), (0 + 4 + 0 + 16) / 4);
    backward(y);
    assert.deepEqual(Array.from(p.gradValues()!), [0, 1, 0, -2]);
    assert.equal(t.grad, null);
  });
  it('shape error names the op and the shapes', () => {
    assert.throws(() => mseLoss(Tensor.zeros([2, 3]), Tensor.zeros([3, 2])), /^ShapeError: mseLoss: prediction and target shapes differ \(shapes \[2, 3\], \[3, 2\]\)/);
    assert.throws(() => mseLoss(Tensor.zeros([6]), Tensor.zeros([6, 1])), /mseLoss: .*\(shapes \[6\], \[6, 1\]\)/);
  });
});
