import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, backward, embedding } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, gradOf, seedFor, tensor, valuesOf, zeros } from '../../helpers/on_device.js';
import { Rng, assertShape, labels, leaf, randn } from '../../helpers/tensors.js';

describe('embedding', () => {
  it('gradcheck with repeated ids', async () => {
    const ids = labels([1, 3, 1, 0, 1]);
    await gradcheckOnBackend((t) => embedding(t, ids), [randn([5, 3], new Rng(1))], { name: 'embedding' });
  });
  it('gradcheck with a 2-d id shape and unused rows', async () => {
    const ids = labels([2, 2, 0, 4, 2, 0]);
    await gradcheckOnBackend((t) => embedding(t, ids, [2, 3]), [randn([6, 2], new Rng(2))], { name: 'embedding 2-d ids' });
  });
  it('forward gathers rows; output shape is idsShape + [dim]', async () => {
    const table = tensor([0, 1, 10, 11, 20, 21], [3, 2]);
    const y = embedding(table, labels([2, 0, 2]));
    assertShape(y, [3, 2]);
    assertValues(await valuesOf(y), [20, 21, 0, 1, 20, 21]);
    const z = embedding(table, labels([1, 2, 0, 1]), [2, 2]);
    assertShape(z, [2, 2, 2]);
    assertValues(await valuesOf(z), [10, 11, 20, 21, 0, 1, 10, 11]);
  });
  it('hand-computed gradient: repeated ids accumulate, unused rows stay 0', async () => {
    const table = leaf(zeros([3, 2], 'float64'));
    const y = embedding(table, labels([2, 0, 2]));
    backward(y, seedFor(y, [1, 2, 3, 4, 5, 6]));
    assertValues(await gradOf(table), [3, 4, 0, 0, 6, 8]);
  });
  it('errors name the op (and the shapes)', async () => {
    assert.throws(() => embedding(zeros([6]), labels([0])), /^ShapeError: embedding: table must be \[vocab, dim\] \(shapes \[6\]\)/);
    assert.throws(() => embedding(zeros([3, 2]), labels([0, 3])), /embedding: id 3 at position 1 is outside \[0, 3\)/);
    assert.throws(() => embedding(zeros([3, 2]), labels([-1])), /embedding: id -1 at position 0/);
    assert.throws(() => embedding(zeros([3, 2]), labels([0, 1, 2]), [2, 2]), /^ShapeError: embedding: .*\(shapes \[3, 2\], \[2, 2\]\)/);
    assert.throws(() => embedding(zeros([3, 2]), labels([0, 1, 2]), [2]), /^ShapeError: embedding: .*\(shapes \[3, 2\], \[2\]\)/);
  });
  it('int32 tensor ids are read where they live: the same rows and gradient as host ids, shape taken from the tensor', () => {
    const table = leaf(Tensor.from([0, 1, 10, 11, 20, 21], [3, 2], 'float64'));
    const ids = Tensor.fromHost(Int32Array.of(2, 0, 2, 1), [2, 2]);
    assert.equal(ids.dtype, 'int32');
    const y = embedding(table, ids);
    assertShape(y, [2, 2, 2]);
    assert.deepEqual(y.toArray(), [20, 21, 0, 1, 20, 21, 10, 11]);
    backward(y, new Float64Array([1, 2, 3, 4, 5, 6, 7, 8]));
    assert.deepEqual(Array.from(table.gradValues()!), [3, 4, 7, 8, 6, 8]);
    assert.throws(() => embedding(table, Tensor.fromHost(Int32Array.of(3), [1])), /embedding: id 3 at position 0 is outside \[0, 3\)/);
    assert.throws(() => embedding(table, Tensor.from([1], [1])), /^TypeError: embedding: indices must be an int32 tensor, got float32/);
  });
});
