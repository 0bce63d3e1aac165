import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, argmax, backward, max, mean, sum } from '../../../src/tensor/index.js';
import { backend } from '../../../src/tensor/dispatch.js';
import { listedAsNotProvided, providesOp } from '../../helpers/provided.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, itemOf, tensor, valuesOf, zeros } from '../../helpers/on_device.js';
import { Rng, assertShape, distinct, leaf, randn } from '../../helpers/tensors.js';

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
        it(`${op.name} ${name}${keepDims ? ' keepDims' : ''}`, async () => {
          await gradcheckOnBackend((x) => op.fn(x, axes, keepDims), [randn([2, 3, 4], new Rng(1))], { name: op.name });
        });
      }
    }
    it(`${op.name} over a size-1 dimension`, async () => {
      await gradcheckOnBackend((x) => op.fn(x, 1), [randn([3, 1, 2], new Rng(2))], { name: op.name });
      await gradcheckOnBackend((x) => op.fn(x, 0, true), [randn([3, 1, 2], new Rng(2))], { name: op.name });
    });
  }
});

describe('sum / mean: forward values and shapes', () => {
  const x = (): Tensor => tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  it('sum', async () => {
    assertValues(await valuesOf(sum(x(), 0)), [5, 7, 9]);
    assertShape(sum(x(), 0), [3]);
    assertValues(await valuesOf(sum(x(), 1)), [6, 15]);
    assertShape(sum(x(), 1, true), [2, 1]);
    assertValues(await valuesOf(sum(x())), [21]);
    assertShape(sum(x()), []);
    assertValues([await itemOf(sum(x()))], [21]);
    assertShape(sum(x(), undefined, true), [1, 1]);
    assertShape(sum(x(), []), [2, 3]);
    const t = x();
    assertValues(await valuesOf(sum(t, [])), await valuesOf(t));
    assert.notEqual(sum(t, []).buffer, t.buffer, 'a no-axis sum must not alias its input');
  });
  it('sum over several axes of a 3-d tensor', async () => {
    const t = tensor(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    // sum over axes 0 and 2: for each j, sum_i sum_k (12 i + 4 j + k)
    assertValues(await valuesOf(sum(t, [0, 2])), [0, 1, 2].map((j) => 12 * 4 + 2 * 4 * 4 * j + 2 * 6));
    assertShape(sum(t, [0, 2], true), [1, 3, 1]);
  });
  it('mean', async () => {
    assertValues(await valuesOf(mean(x(), 0)), [2.5, 3.5, 4.5]);
    assertValues(await valuesOf(mean(x(), -1)), [2, 5]);
    assertValues([await itemOf(mean(x()))], [3.5]);
    assertShape(mean(x(), [0, 1], true), [1, 1]);
  });
  it('hand-computed gradient of mean', async () => {
    const t = leaf(tensor([1, 2, 3, 4, 5, 6], [2, 3]));
    backward(mean(t));
    assertValues(await gradOf(t), new Array(6).fill(1 / 6), { rtol: 1e-15 });
  });
  it('axis errors name the op and the shape', () => {
    assert.throws(() => sum(x(), 2), /^ShapeError: sum: axis 2 out of range for 2-d tensor \(shapes \[2, 3\]\)/);
    assert.throws(() => sum(x(), [0, -3]), /sum: axis -3 out of range .*\[2, 3\]/);
    assert.throws(() => mean(x(), 5), /^ShapeError: mean: axis 5 out of range .*\[2, 3\]/);
  });
});

/** Whether the backend under test gives argmax's indices to the host; where not, the pair must be on the asserted list. */
async function argmaxProvided(): Promise<boolean> {
  const b = backend();
  if (await providesOp(b, 'argmax')) return true;
  assert.ok(listedAsNotProvided(b.name, 'argmax'), `${b.name} does not provide argmax, which NOT_PROVIDED does not list`);
  return false;
}

describe('max', () => {
  for (const axis of [0, 1, 2, -1]) {
    for (const keepDims of [false, true]) {
      it(`gradcheck axis ${axis}${keepDims ? ' keepDims' : ''}`, async () => {
        await gradcheckOnBackend((x) => max(x, axis, keepDims), [distinct([2, 3, 4], new Rng(axis + 5))], { name: 'max' });
      });
    }
  }
  it('forward values, shapes and argmax', async () => {
    const x = tensor([1, 5, 3, 4, 2, 6], [2, 3]);
    assertValues(await valuesOf(max(x, 0)), [4, 5, 6]);
    assertValues(await valuesOf(max(x, 1)), [5, 6]);
    assertShape(max(x, 1, true), [2, 1]);
    assertShape(max(x, 0), [3]);
    if (!(await argmaxProvided())) return;
    assert.deepEqual(Array.from(await argmax(x)), [1, 2]);
    assert.deepEqual(Array.from(await argmax(tensor([0, 9, 1, 8, 2, 7, 3, 6], [2, 2, 2], 'float32'))), [1, 1, 1, 1]);
  });
  it('ties: value and gradient go to the first maximal element', async () => {
    const x = leaf(tensor([1, 3, 3, -2], [4]));
    const y = max(x, 0);
    assert.equal(await itemOf(y), 3);
    backward(y);
    assert.deepEqual(await gradOf(x), [0, 1, 0, 0]);
    if (!(await argmaxProvided())) return;
    assert.deepEqual(Array.from(await argmax(tensor([2, 2, 1], [3], 'float32'))), [0]);
  });
  it('axis errors name the op and the shape', async () => {
    assert.throws(() => max(zeros([2, 3]), 2), /^ShapeError: max: axis 2 out of range for 2-d tensor \(shapes \[2, 3\]\)/);
    assert.throws(() => max(zeros([2, 3]), -3), /max: axis -3 .*\[2, 3\]/);
  });
});
