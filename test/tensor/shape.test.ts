import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ShapeError, broadcastShapes, broadcastStrides, fmtShape, normAxis, sameShape, sizeOf, stridesOf,
} from '../../src/tensor/shape.js';

describe('shape arithmetic', () => {
  it('fmtShape, sizeOf, stridesOf', () => {
    assert.equal(fmtShape([2, 3]), '[2, 3]');
    assert.equal(fmtShape([]), '[]');
    assert.equal(sizeOf([2, 3, 4]), 24);
    assert.equal(sizeOf([]), 1);
    assert.equal(sizeOf([3, 0]), 0);
    assert.deepEqual(stridesOf([2, 3, 4]), [12, 4, 1]);
    assert.deepEqual(stridesOf([5]), [1]);
    assert.deepEqual(stridesOf([]), []);
  });
  it('broadcastShapes follows numpy rules', () => {
    assert.deepEqual(broadcastShapes('op', [2, 3], [2, 3]), [2, 3]);
    assert.deepEqual(broadcastShapes('op', [2, 3], [3]), [2, 3]);
    assert.deepEqual(broadcastShapes('op', [3], [2, 3]), [2, 3]);
    assert.deepEqual(broadcastShapes('op', [2, 1, 3], [4, 1]), [2, 4, 3]);
    assert.deepEqual(broadcastShapes('op', [], [2, 3]), [2, 3]);
    assert.deepEqual(broadcastShapes('op', [2, 3], []), [2, 3]);
    assert.deepEqual(broadcastShapes('op', [], []), []);
    assert.deepEqual(broadcastShapes('op', [1], [0]), [0]);
    assert.deepEqual(broadcastShapes('op', [1, 1], [1]), [1, 1]);
  });
  it('broadcastShapes errors name the op and both shapes', () => {
    assert.throws(() => broadcastShapes('mul', [2, 3], [4]), (e: unknown) => {
      assert.ok(e instanceof ShapeError);
      assert.equal(e.name, 'ShapeError');
      assert.equal(e.message, 'mul: shapes cannot be broadcast together (shapes [2, 3], [4])');
      return true;
    });
    assert.throws(() => broadcastShapes('add', [2, 1], [3, 1]), /^ShapeError: add: .*\[2, 1\], \[3, 1\]/);
  });
  it('broadcastStrides gives 0 on broadcast and missing dimensions', () => {
    assert.deepEqual(broadcastStrides([3], [2, 3]), [0, 1]);
    assert.deepEqual(broadcastStrides([2, 1], [2, 3]), [1, 0]);
    assert.deepEqual(broadcastStrides([2, 1, 3], [2, 4, 3]), [3, 0, 1]);
    assert.deepEqual(broadcastStrides([], [2, 3]), [0, 0]);
    assert.deepEqual(broadcastStrides([2, 3], [2, 3]), [3, 1]);
  });
  it('normAxis resolves negative axes and names the op on error', () => {
    assert.equal(normAxis('sum', -1, 3, [2, 3, 4]), 2);
    assert.equal(normAxis('sum', 0, 3, [2, 3, 4]), 0);
    assert.equal(normAxis('sum', -3, 3, [2, 3, 4]), 0);
    assert.throws(() => normAxis('sum', 3, 3, [2, 3, 4]), /^ShapeError: sum: axis 3 out of range for 3-d tensor \(shapes \[2, 3, 4\]\)/);
    assert.throws(() => normAxis('max', -4, 3, [2, 3, 4]), /max: axis -4 out of range/);
  });
  it('sameShape', () => {
    assert.equal(sameShape([2, 3], [2, 3]), true);
    assert.equal(sameShape([2, 3], [3, 2]), false);
    assert.equal(sameShape([2, 3], [2, 3, 1]), false);
    assert.equal(sameShape([], []), true);
  });
  it('ShapeError formats op, detail and shapes', () => {
    const e = new ShapeError('conv2d', 'bad', [[1, 2], [3], []]);
    assert.equal(e.message, 'conv2d: bad (shapes [1, 2], [3], [])');
    assert.ok(e instanceof Error);
  });
});
