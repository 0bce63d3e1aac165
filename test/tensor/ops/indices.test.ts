/** Index arguments (ids, labels) as int32 storages on the values' device (src/tensor/ops/indices.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tensor } from '../../../src/tensor/index.js';
import { hostIndexValues, indexCount, indexStorage } from '../../../src/tensor/ops/indices.js';
import { deviceMemory } from '../../../src/tensor/storage.js';

describe('index storages', () => {
  it('host values are adopted on the cpu as an int32 storage (no copy)', () => {
    const ids = Int32Array.of(3, 1, 4);
    const s = indexStorage('test', ids, 'cpu');
    assert.equal(s.dtype, 'int32');
    assert.equal(s.buffer as unknown, ids);
    assert.equal(hostIndexValues(ids), ids);
    assert.equal(indexCount(ids), 3);
  });

  it('an int32 tensor is used where it lives', () => {
    const t = Tensor.fromHost(Int32Array.of(5, 9), [1, 2]);
    assert.equal(indexStorage('test', t, 'cpu'), t.storage);
    assert.deepEqual(Array.from(hostIndexValues(t)!), [5, 9]);
    assert.equal(indexCount(t), 2);
  });

  it('a float tensor, or one on another device, is refused naming the op', () => {
    assert.throws(() => indexStorage('lookup', Tensor.from([1, 2], [2]), 'cpu'), /^TypeError: lookup: indices must be an int32 tensor, got float32/);
    // A cpu storage under another device's name: what a tensor on a device of its own looks like here.
    const elsewhere = new Tensor(Object.assign(Object.create(deviceMemory('cpu').alloc('int32', 2)), { device: 'gpu-x' }), [2]);
    assert.throws(() => indexStorage('lookup', elsewhere, 'cpu'), /lookup: indices live on device "gpu-x", the values on "cpu"/);
    assert.equal(hostIndexValues(elsewhere), null, 'not readable on the host synchronously');
  });
});
