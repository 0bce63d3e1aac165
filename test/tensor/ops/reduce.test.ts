import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/per_backend.js';
import { Tensor, argmax, backward, max, mean, sum } from '../../../src/tensor/index.js';
import { gradcheck } from '../../helpers/gradcheck.js';
import { Rng, assertClose, assertShape, distinct, leaf, randn } from '../../helpers/tensors.js';

const AXES: [string, number | number[] | undefined][] = [
  ['axis 0', 0],
  ['axis 1', 1],
  ['axis -1', -1],
  ['axes [0, 2]', [0, 2]],
  ['axes [2, 0] (unsorted)', [2, 0]],
  ['axes [1, -1]', [1, -1]],
  ['all axes (default)', undefined],
  ['all axes listed', [0, 1, 2]],
  ['no axes ([])', []],
];

describe('sum / mean: gradcheck over [2, 3, 4]', () => {
  for (const op of [{ name: 'sum', fn: sum }, { name: 'mean', fn: mean }]) {
    for (const [name, axes] of AXES) {
      for (const keepDims of [false, true]) {
        it(`${op.name} ${name}${keepDims ? ' keepDims' : ''}`, () => {
          gradcheck((x) => op.fn(x, axes, keepDims), [randn([2, 3, 4], new Rng(1))], { name: op.name });
        });
      }
    }
    it(`${op.name} over a size-1 dimension`, () => {
      gradcheck((x) => op.fn(x, 1), [randn([3, 1, 2], new Rng(2))], { name: op.name });
      gradcheck((x) => op.fn(x, 0, true), [randn([3, 1, 2], new Rng(2))], { name: op.name });
    });
  }
});

describe('sum / mean: forward values and shapes', () => {
  const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3], 'float64');
  it('sum', () => {
    assert.deepEqual(sum(x, 0).toArray(), [5, 7, 9]);
    assertShape(sum(x, 0), [3]);
    assert.deepEqual(sum(x, 1).toArray(), [6, 15]);
    assertShape(sum(x, 1, true), [2, 1]);
    assert.deepEqual(sum(x).toArray(), [21]);
    assertShape(sum(x), []);
    assert.equal(sum(x).item(), 21);
    assertShape(sum(x, undefined, true), [1, 1]);
    assertShape(sum(x, []), [2, 3]);
    assert.deepEqual(sum(x, []).toArray(), x.toArray());
    assert.notEqual(sum(x, []).values(), x.values(), 'a no-axis sum must not alias its input');
  });
  it('sum over several axes of a 3-d tensor', () => {
    const t = Tensor.from(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4], 'float64');
    // sum over axes 0 and 2: for each j, sum_i sum_k (12 i + 4 j + k)
    assert.deepEqual(sum(t, [0, 2]).toArray(), [0, 1, 2].map((j) => 12 * 4 + 2 * 4 * 4 * j + 2 * 6));
    assertShape(sum(t, [0, 2], true), [1, 3, 1]);
  });
  it('mean', () => {
    assert.deepEqual(mean(x, 0).toArray(), [2.5, 3.5, 4.5]);
    assert.deepEqual(mean(x, -1).toArray(), [2, 5]);
    assert.equal(mean(x).item(), 3.5);
    assertShape(mean(x, [0, 1], true), [1, 1]);
  });
  it('hand-computed gradient of mean', () => {
    const t = leaf(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3], 'float64'));
    backward(mean(t));
    assertClose(Array.from(t.gradValues()!), new Array(6).fill(1 / 6), { rtol: 1e-15 });
  });
  it('axis errors name the op and the shape', () => {
    assert.throws(() => sum(x, 2), /^ShapeError: sum: axis 2 out of range for 2-d tensor \(shapes \[2, 3\]\)/);
    assert.throws(() => sum(x, [0, -3]), /sum: axis -3 out of range .*\[2, 3\]/);
    assert.throws(() => mean(x, 5), /^ShapeError: mean: axis 5 out of range .*\[2, 3\]/);
  });
});

describe('max', () => {
  for (const axis of [0, 1, 2, -1]) {
    for (const keepDims of [false, true]) {
      it(`gradcheck axis ${axis}${keepDims ? ' keepDims' : ''}`, () => {
        gradcheck((x) => max(x, axis, keepDims), [distinct([2, 3, 4], new Rng(axis + 5))], { name: 'max' });
      });
    }
  }
  it('forward values, shapes and argmax', () => {
    const x = Tensor.from([1, 5, 3, 4, 2, 6], [2, 3], 'float64');
    assert.deepEqual(max(x, 0).toArray(), [4, 5, 6]);
    assert.deepEqual(max(x, 1).toArray(), [5, 6]);
    assertShape(max(x, 1, true), [2, 1]);
    assertShape(max(x, 0), [3]);
    assert.deepEqual(Array.from(argmax(x)), [1, 2]);
    assert.deepEqual(Array.from(argmax(Tensor.from([0, 9, 1, 8, 2, 7, 3, 6], [2, 2, 2]))), [1, 1, 1, 1]);
  });
  it('ties: value and gradient go to the first maximal element', () => {
    const x = leaf(Tensor.from([1, 3, 3, -2], [4], 'float64'));
    const y = max(x, 0);
    assert.equal(y.item(), 3);
    backward(y);
    assert.deepEqual(Array.from(x.gradValues()!), [0, 1, 0, 0]);
    assert.deepEqual(Array.from(argmax(Tensor.from([2, 2, 1], [3]))), [0]);
  });
  it('axis errors name the op and the shape', () => {
    assert.throws(() => max(Tensor.zeros([2, 3]), 2), /^ShapeError: max: axis 2 out of range for 2-d tensor \(shapes \[2, 3\]\)/);
    assert.throws(() => max(Tensor.zeros([2, 3]), -3), /max: axis -3 .*\[2, 3\]/);
  });
});
