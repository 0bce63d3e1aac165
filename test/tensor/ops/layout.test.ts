import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, backward, concat, flatten, mul, permute, reshape, slice, transpose } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, seedFor, tensor, valuesOf, zeros } from '../../helpers/on_device.js';
import { Rng, assertShape, leaf, randn } from '../../helpers/tensors.js';

const iota = (shape: number[]): Tensor => tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i), shape);

describe('reshape / flatten', () => {
  it('gradcheck', async () => {
    const r = new Rng(1);
    await gradcheckOnBackend((x) => reshape(x, [6, 4]), [randn([2, 3, 4], r)], { name: 'reshape' });
    await gradcheckOnBackend((x) => reshape(x, [-1, 2]), [randn([2, 3, 4], r)], { name: 'reshape -1' });
    await gradcheckOnBackend((x) => reshape(x, []), [randn([1, 1], r)], { name: 'reshape to 0-d' });
    await gradcheckOnBackend((x) => flatten(x), [randn([2, 3, 2], r)], { name: 'flatten' });
    await gradcheckOnBackend((x) => flatten(x, 0), [randn([2, 3, 2], r)], { name: 'flatten(0)' });
    // A reshape whose output is used elsewhere too: gradients from both paths add up.
    await gradcheckOnBackend((x) => mul(reshape(x, [3, 2]), reshape(x, [3, 2])), [randn([6], r)], { name: 'reshape twice' });
  });
  it('forward: same data, new shape', async () => {
    const x = iota([2, 3, 4]);
    const y = reshape(x, [4, -1]);
    assertShape(y, [4, 6]);
    assertValues(await valuesOf(y), await valuesOf(x));
    assertShape(flatten(x), [2, 12]);
    assertShape(flatten(x, 0), [24]);
    assertShape(flatten(x, 2), [2, 3, 4]);
    assertShape(flatten(x, -2), [2, 12]);
  });
  it('shape errors name the op and the shapes', async () => {
    const x = zeros([2, 3]);
    assert.throws(() => reshape(x, [4, 2]), /^ShapeError: reshape: cannot reshape to \[4, 2\] \(shapes \[2, 3\]\)/);
    assert.throws(() => reshape(x, [-1, -1]), /^ShapeError: reshape: cannot infer -1 in \[-1, -1\] \(shapes \[2, 3\]\)/);
    assert.throws(() => reshape(x, [4, -1]), /reshape: cannot infer -1 in \[4, -1\] \(shapes \[2, 3\]\)/);
    assert.throws(() => reshape(x, [0, -1]), /reshape: cannot infer -1 in \[0, -1\] \(shapes \[2, 3\]\)/);
    assert.throws(() => flatten(x, 2), /^ShapeError: flatten: .*\(shapes \[2, 3\]\)/);
    assert.throws(() => flatten(x, -3), /^ShapeError: flatten: .*\(shapes \[2, 3\]\)/);
  });
});

describe('permute / transpose', () => {
  it('gradcheck', async () => {
    const r = new Rng(2);
    await gradcheckOnBackend((x) => permute(x, [2, 0, 1]), [randn([2, 3, 4], r)], { name: 'permute' });
    await gradcheckOnBackend((x) => permute(x, [1, 0, 3, 2]), [randn([2, 3, 2, 2], r)], { name: 'permute 4-d' });
    await gradcheckOnBackend((x) => permute(x, [-1, 0, 1]), [randn([2, 3, 4], r)], { name: 'permute negative' });
    await gradcheckOnBackend((x) => transpose(x), [randn([2, 3, 4], r)], { name: 'transpose' });
    await gradcheckOnBackend((x) => transpose(x, 0, 2), [randn([2, 3, 4], r)], { name: 'transpose(0, 2)' });
    await gradcheckOnBackend((x) => transpose(x, 1, 1), [randn([2, 3], r)], { name: 'transpose(1, 1)' });
  });
  it('forward values', async () => {
    const x = iota([2, 3]);
    const t = transpose(x);
    assertShape(t, [3, 2]);
    assertValues(await valuesOf(t), [0, 3, 1, 4, 2, 5]);
    const p = permute(iota([2, 3, 4]), [2, 0, 1]);
    assertShape(p, [4, 2, 3]);
    // p[k, i, j] = x[i, j, k] = 12 i + 4 j + k
    assert.equal((await valuesOf(p))[(3 * 2 + 1) * 3 + 2], 12 * 1 + 4 * 2 + 3);
    assertValues(await valuesOf(permute(iota([2, 3, 4]), [0, 1, 2])), await valuesOf(iota([2, 3, 4])));
  });
  it('shape errors name the op and the shapes', async () => {
    const x = zeros([2, 3, 4]);
    assert.throws(() => permute(x, [0, 1]), /^ShapeError: permute: invalid permutation \[0, 1\] \(shapes \[2, 3, 4\]\)/);
    assert.throws(() => permute(x, [0, 1, 1]), /permute: invalid permutation \[0, 1, 1\] \(shapes \[2, 3, 4\]\)/);
    assert.throws(() => permute(x, [0, 1, 3]), /^ShapeError: permute: .*\[2, 3, 4\]/);
    assert.throws(() => transpose(x, 0, 3), /^ShapeError: transpose: axis 3 out of range for 3-d tensor \(shapes \[2, 3, 4\]\)/);
  });
});

describe('slice', () => {
  it('gradcheck along each axis, with negative indices', async () => {
    const r = new Rng(3);
    await gradcheckOnBackend((x) => slice(x, 0, 1, 3), [randn([4, 3, 2], r)], { name: 'slice axis 0' });
    await gradcheckOnBackend((x) => slice(x, 1, 0, 2), [randn([4, 3, 2], r)], { name: 'slice axis 1' });
    await gradcheckOnBackend((x) => slice(x, -1, 1, 2), [randn([4, 3, 2], r)], { name: 'slice axis -1' });
    await gradcheckOnBackend((x) => slice(x, 0, -3, -1), [randn([4, 3], r)], { name: 'slice negative start/end' });
    await gradcheckOnBackend((x) => slice(x, 1, -2, 3), [randn([4, 3], r)], { name: 'slice negative start' });
    await gradcheckOnBackend((x) => slice(x, 1, 1, 100), [randn([4, 3], r)], { name: 'slice end past the end' });
    await gradcheckOnBackend((x) => concat([slice(x, 1, 0, 2), slice(x, 1, 1, 3)], 1), [randn([2, 3], r)], { name: 'overlapping slices' });
  });
  it('forward values', async () => {
    const x = iota([4, 3]);
    assertValues(await valuesOf(slice(x, 0, 1, 3)), [3, 4, 5, 6, 7, 8]);
    assertValues(await valuesOf(slice(x, 1, 1, 2)), [1, 4, 7, 10]);
    assertValues(await valuesOf(slice(x, 0, -1, 4)), [9, 10, 11]);
    assertValues(await valuesOf(slice(x, -1, -2, -1)), [1, 4, 7, 10]);
    assertShape(slice(x, 0, 2, 2), [0, 3]);
  });
  it('hand-computed gradient: ones in the window, zeros elsewhere', async () => {
    const x = leaf(iota([2, 3]));
    const y = slice(x, 1, 1, 3);
    backward(y, seedFor(y, new Array(4).fill(1)));
    assertValues(await gradOf(x), [0, 1, 1, 0, 1, 1]);
  });
  it('shape errors name the op and the shapes', async () => {
    const x = zeros([4, 3]);
    assert.throws(() => slice(x, 0, 3, 1), /^ShapeError: slice: range \[3, 1\) invalid on axis 0 of size 4 \(shapes \[4, 3\]\)/);
    assert.throws(() => slice(x, 0, -5, 2), /slice: range \[-5, 2\) invalid .*\(shapes \[4, 3\]\)/);
    assert.throws(() => slice(x, 1, 0, -4), /slice: range \[0, -4\) invalid .*\(shapes \[4, 3\]\)/);
    assert.throws(() => slice(x, 2, 0, 1), /^ShapeError: slice: axis 2 out of range .*\[4, 3\]/);
  });
});

describe('concat', () => {
  it('gradcheck along axis 0, 1 and the last axis', async () => {
    const r = new Rng(4);
    await gradcheckOnBackend((a, b, c) => concat([a, b, c], 0), [randn([1, 3, 2], r), randn([2, 3, 2], r), randn([3, 3, 2], r)], { name: 'concat axis 0' });
    await gradcheckOnBackend((a, b) => concat([a, b], 1), [randn([2, 1, 2], r), randn([2, 3, 2], r)], { name: 'concat axis 1' });
    await gradcheckOnBackend((a, b, c) => concat([a, b, c], -1), [randn([2, 3, 2], r), randn([2, 3, 1], r), randn([2, 3, 3], r)], { name: 'concat axis -1' });
    await gradcheckOnBackend((a, b) => concat([a, b], 2), [randn([2, 2, 1], r), randn([2, 2, 2], r)], { name: 'concat axis 2' });
    await gradcheckOnBackend((a) => concat([a], 0), [randn([2, 2], r)], { name: 'concat one tensor' });
    await gradcheckOnBackend((a) => concat([a, a], 1), [randn([2, 2], r)], { name: 'concat a tensor with itself' });
    await gradcheckOnBackend((a, b) => concat([a, b], 0), [randn([1, 2], r), randn([2, 2], r)], { name: 'concat, one input frozen', wrt: [1] });
  });
  it('forward values', async () => {
    const a = tensor([1, 2, 3, 4], [2, 2]);
    const b = tensor([5, 6], [1, 2]);
    const c = tensor([7, 8], [2, 1]);
    const y0 = concat([a, b], 0);
    assertShape(y0, [3, 2]);
    assertValues(await valuesOf(y0), [1, 2, 3, 4, 5, 6]);
    const y1 = concat([a, c], 1);
    assertShape(y1, [2, 3]);
    assertValues(await valuesOf(y1), [1, 2, 7, 3, 4, 8]);
    assertValues(await valuesOf(concat([c, a], -1)), [7, 1, 2, 8, 3, 4]);
  });
  it('shape errors name the op and the shapes', async () => {
    assert.throws(
      () => concat([zeros([2, 2]), zeros([3, 3])], 0),
      /^ShapeError: concat: shapes differ outside axis 0 \(shapes \[2, 2\], \[3, 3\]\)/,
    );
    assert.throws(() => concat([zeros([2, 2]), zeros([2, 2, 1])], 0), /concat: .*\(shapes \[2, 2\], \[2, 2, 1\]\)/);
    assert.throws(() => concat([zeros([2, 2])], 2), /^ShapeError: concat: axis 2 out of range .*\[2, 2\]/);
    assert.throws(() => concat([], 0), /^ShapeError: concat: needs at least one tensor/);
  });
});
