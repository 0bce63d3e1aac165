import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, affine, backward, crossEntropy, mseLoss } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, itemOf, tensor, zeros } from '../../helpers/on_device.js';
import { Rng, labels, leaf, randn } from '../../helpers/tensors.js';

describe('crossEntropy', () => {
  it('gradcheck [4, 5]', async () => {
    await gradcheckOnBackend((x) => crossEntropy(x, labels([0, 4, 2, 2])), [randn([4, 5], new Rng(1), 'float64', 2)], { name: 'crossEntropy' });
  });
  it('gradcheck with ignored rows (label -1)', async () => {
    await gradcheckOnBackend((x) => crossEntropy(x, labels([1, -1, 3, -1, 0])), [randn([5, 4], new Rng(2), 'float64', 2)], { name: 'crossEntropy ignore' });
  });
  it('gradcheck through an intermediate with an upstream gradient other than 1 (the in-place path scales)', async () => {
    await gradcheckOnBackend((x) => affine(crossEntropy(affine(x, 2, 0), labels([2, -1, 0, 4])), 3, 0.5), [randn([4, 5], new Rng(4), 'float64', 2)], { name: 'crossEntropy scaled' });
  });
  it('gradcheck 3-d logits [2, 3, 4] (one label per row)', async () => {
    await gradcheckOnBackend((x) => crossEntropy(x, labels([0, 1, 2, 3, -1, 1])), [randn([2, 3, 4], new Rng(3))], { name: 'crossEntropy 3-d' });
  });
  it('known value: -log softmax([1, 2, 3])[2] = 0.4076059644', async () => {
    const y = crossEntropy(tensor([1, 2, 3], [1, 3]), labels([2]));
    assert.equal(y.ndim, 0);
    assertValues([await itemOf(y)], [0.40760596444438013], { rtol: 1e-14 });
    // mean over counted rows only: the ignored row changes nothing
    const z = crossEntropy(tensor([1, 2, 3, 9, 9, 9], [2, 3]), labels([2, -1]));
    assertValues([await itemOf(z)], [0.40760596444438013], { rtol: 1e-14 });
    // uniform logits: log(C)
    assertValues([await itemOf(crossEntropy(zeros([3, 4], 'float64'), labels([0, 1, 3])))], [Math.log(4)], { rtol: 1e-14 });
  });
  it('hand-computed gradient: (softmax - onehot) / rows, nothing for ignored rows', async () => {
    const x = leaf(tensor([0, 0, 0, 5, 5, 5], [2, 3]));
    backward(crossEntropy(x, labels([1, -1])));
    assertValues(await gradOf(x), [1 / 3, -2 / 3, 1 / 3, 0, 0, 0], { rtol: 1e-14 });
  });
  it('stable for large logits', async () => {
    const y = await itemOf(crossEntropy(tensor([1000, 0, -1000], [1, 3], 'float32'), labels([2])));
    assert.ok(Number.isFinite(y));
    assertValues([y], [2000], { rtol: 1e-6 }, 'float32');
  });
  it('all rows ignored: loss 0 and a zero gradient (no NaN)', async () => {
    const x = leaf(tensor([1, 2, 3, 4], [2, 2]));
    const y = crossEntropy(x, labels([-1, -1]));
    assert.equal(await itemOf(y), 0);
    backward(y);
    for (const g of x.grad ? await gradOf(x) : []) assert.equal(g, 0);
  });
  it('int32 tensor labels (on the logits\' device, a GPU\'s too) give the loss and gradient host labels give', async () => {
    const values = [1, 2, 3, 0.5, -1, 2, 0, 0, 0];
    const a = leaf(tensor(values, [3, 3]));
    const b = leaf(tensor(values, [3, 3]));
    const la = crossEntropy(a, labels([2, -1, 0]));
    const cpuLabels = Tensor.fromHost(Int32Array.of(2, -1, 0), [3]);
    let lb: Tensor;
    if (b.device !== 'cpu') {
      // Labels on another device than the logits are refused by name.
      assert.throws(() => crossEntropy(b, cpuLabels), /crossEntropy: indices live on device "cpu", the values on "webgpu"/);
      // Labels on the GPU: the loss cannot count them without a read, so the caller says how many rows are scored.
      const onDevice = Tensor.fromHost(Int32Array.of(2, -1, 0), [3], false, b.device);
      assert.equal(onDevice.dtype, 'int32');
      assert.throws(() => crossEntropy(b, onDevice), /crossEntropy: labels on device "webgpu" cannot be counted on the host: pass the number of scored rows/);
      lb = crossEntropy(b, onDevice, 2);
    } else {
      lb = crossEntropy(b, cpuLabels);
      assert.throws(() => crossEntropy(tensor(values, [3, 3]), cpuLabels, 3), /crossEntropy: 3 scored rows given, but the labels score 2/);
    }
    assert.equal(await itemOf(lb), await itemOf(la));
    backward(la);
    backward(lb);
    assert.deepEqual(Array.from(await gradOf(b)), Array.from(await gradOf(a)));
    assert.throws(() => crossEntropy(tensor(values, [3, 3]), Tensor.fromHost(Int32Array.of(2, 3, 0), [3])), /crossEntropy: label 3 at row 1 is outside \[0, 3\)/);
  });
  it('errors name the op and the shapes', async () => {
    assert.throws(() => crossEntropy(zeros([3, 4]), labels([0, 1])), /^ShapeError: crossEntropy: expected 3 labels, got 2 \(shapes \[3, 4\], \[2\]\)/);
    assert.throws(() => crossEntropy(zeros([2, 4]), labels([0, 4])), /crossEntropy: label 4 at row 1 is outside \[0, 4\)/);
    assert.throws(() => crossEntropy(zeros([2, 4]), labels([-2, 0])), /crossEntropy: label -2 at row 0/);
  });
});

describe('crossEntropy: PyTorch\'s ignore label and label smoothing', () => {
  it('gradcheck with ignored rows (label -100, the default ignoreIndex)', async () => {
    await gradcheckOnBackend((x) => crossEntropy(x, labels([1, -100, 3, -100, 0])), [randn([5, 4], new Rng(5), 'float64', 2)], { name: 'crossEntropy -100' });
  });
  it('gradcheck with label smoothing, ignored rows and an upstream gradient other than 1', async () => {
    await gradcheckOnBackend((x) => affine(crossEntropy(affine(x, 2, 0), labels([2, -100, 0, 4]), { labelSmoothing: 0.3 }), 3, 0.5), [randn([4, 5], new Rng(6), 'float64', 2)], { name: 'crossEntropy smoothed' });
    await gradcheckOnBackend((x) => crossEntropy(x, labels([1, 2, 2]), { labelSmoothing: 1 }), [randn([3, 4], new Rng(7), 'float64', 2)], { name: 'crossEntropy smoothing 1' });
  });
  it('-100 and -1 give the same loss and gradient; the mean is over the counted rows', async () => {
    const values = [1, 2, 3, 0.5, -1, 2, 0, 0, 0, 4, 1, -2];
    const a = leaf(tensor(values, [4, 3]));
    const b = leaf(tensor(values, [4, 3]));
    const la = crossEntropy(a, labels([2, -1, 0, -1]));
    const lb = crossEntropy(b, labels([2, -100, 0, -100]));
    assert.equal(await itemOf(lb), await itemOf(la));
    const first = crossEntropy(tensor(values.slice(0, 3), [1, 3]), labels([2]));
    const third = crossEntropy(tensor(values.slice(6, 9), [1, 3]), labels([0]));
    assertValues([await itemOf(lb)], [((await itemOf(first)) + (await itemOf(third))) / 2], { rtol: 1e-12 });
    backward(la);
    backward(lb);
    assert.deepEqual(await gradOf(b), await gradOf(a));
  });
  it('an ignoreIndex that is a class index skips its rows (and -100 is then a bad label)', async () => {
    const values = [1, 2, 3, 0.5, -1, 2];
    const a = leaf(tensor(values, [2, 3]));
    const b = leaf(tensor(values, [2, 3]));
    const la = crossEntropy(a, labels([2, -1]));
    const lb = crossEntropy(b, labels([2, 1]), { ignoreIndex: 1 });
    assert.equal(await itemOf(lb), await itemOf(la));
    backward(la);
    backward(lb);
    assert.deepEqual(await gradOf(b), await gradOf(a));
    assert.throws(() => crossEntropy(tensor(values, [2, 3]), labels([2, -100]), { ignoreIndex: 1 }), /crossEntropy: label -100 at row 1 is outside \[0, 3\) and is not the ignore label 1/);
  });
  it('label smoothing: known value and hand-computed gradient ((p − (1 − ε)·onehot − ε/C) / counted)', async () => {
    // uniform logits over 4 classes: every term is log 4 whatever ε is
    assertValues([await itemOf(crossEntropy(zeros([2, 4], 'float64'), labels([0, 3]), { labelSmoothing: 0.4 }))], [Math.log(4)], { rtol: 1e-14 });
    const x = leaf(tensor([0, 0, 0, 5, 5, 5], [2, 3]));
    backward(crossEntropy(x, labels([1, -100]), { labelSmoothing: 0.3 }));
    const [p, e] = [1 / 3, 0.3];
    assertValues(await gradOf(x), [p - e / 3, p - (1 - e) - e / 3, p - e / 3, 0, 0, 0], { rtol: 1e-12 });
  });
  it('all rows ignored: loss 0 and a zero gradient, smoothed or not (torch\'s mean gives NaN)', async () => {
    for (const labelSmoothing of [0, 0.1]) {
      const x = leaf(tensor([1, 2, 3, 4], [2, 2]));
      const y = crossEntropy(x, labels([-100, -100]), { labelSmoothing });
      assert.equal(await itemOf(y), 0);
      backward(y);
      for (const g of x.grad ? await gradOf(x) : []) assert.equal(g, 0);
    }
  });
  it('int32 tensor labels on the logits\' device give what host labels give (-100, smoothing)', async () => {
    const values = [1, 2, 3, 0.5, -1, 2, 0, 0.25, 0];
    const a = leaf(tensor(values, [3, 3]));
    const b = leaf(tensor(values, [3, 3]));
    const la = crossEntropy(a, labels([2, -100, 0]), { labelSmoothing: 0.2 });
    const onDevice = Tensor.fromHost(Int32Array.of(2, -100, 0), [3], false, b.device);
    const lb = crossEntropy(b, onDevice, { labelSmoothing: 0.2, scored: 2 });
    assertValues([await itemOf(lb)], [await itemOf(la)], { rtol: 1e-6 }, 'float32');
    backward(la);
    backward(lb);
    assertValues(await gradOf(b), await gradOf(a), { rtol: 1e-6 }, 'float32');
    if (b.device !== 'cpu') {
      assert.throws(() => crossEntropy(tensor(values, [3, 3]), onDevice, { ignoreIndex: 0, scored: 2 }), /crossEntropy: ignoreIndex 0 is a class index, which labels on device "webgpu" cannot be mapped from/);
    }
  });
  it('bad options are refused by name', () => {
    assert.throws(() => crossEntropy(zeros([2, 4]), labels([0, 1]), { labelSmoothing: 1.5 }), /crossEntropy: labelSmoothing must lie in \[0, 1\], got 1.5/);
    assert.throws(() => crossEntropy(zeros([2, 4]), labels([0, 1]), { labelSmoothing: -0.1 }), /labelSmoothing must lie in \[0, 1\]/);
    assert.throws(() => crossEntropy(zeros([2, 4]), labels([0, 1]), { ignoreIndex: 0.5 }), /crossEntropy: ignoreIndex must be an integer, got 0.5/);
  });
});

describe('mseLoss', () => {
  it('gradcheck (both arguments)', async () => {
    const r = new Rng(4);
    await gradcheckOnBackend(mseLoss, [randn([3, 4], r), randn([3, 4], r)], { name: 'mseLoss' });
    await gradcheckOnBackend(mseLoss, [randn([5], r), randn([5], r)], { name: 'mseLoss target frozen', wrt: [0] });
    await gradcheckOnBackend(mseLoss, [randn([2, 2], r), randn([2, 2], r)], { name: 'mseLoss pred frozen', wrt: [1] });
    await gradcheckOnBackend((x) => mseLoss(x, x), [randn([3], r)], { name: 'mseLoss(x, x)' });
  });
  it('known value and gradient', async () => {
    const p = leaf(tensor([1, 2, 3, 4], [2, 2]));
    const t = tensor([1, 0, 3, 8], [2, 2]);
    const y = mseLoss(p, t);
    assert.equal(await itemOf(y), (0 + 4 + 0 + 16) / 4);
    backward(y);
    assertValues(await gradOf(p), [0, 1, 0, -2]);
    assert.equal(t.grad, null);
  });
  it('shape error names the op and the shapes', async () => {
    assert.throws(() => mseLoss(zeros([2, 3]), zeros([3, 2])), /^ShapeError: mseLoss: prediction and target shapes differ \(shapes \[2, 3\], \[3, 2\]\)/);
    assert.throws(() => mseLoss(zeros([6]), zeros([6, 1])), /mseLoss: .*\(shapes \[6\], \[6, 1\]\)/);
  });
});
