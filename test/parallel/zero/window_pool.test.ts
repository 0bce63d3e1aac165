import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../../src/tensor/backends/cpu/storage.js';
import { WindowPool } from '../../../src/parallel/zero/window_pool.js';
import { CPU } from '../../../src/tensor/storage.js';

test('a window given back is the next one of its size taken: zeroed for a gradient, as it was for parameters', () => {
  const pool = new WindowPool(CPU);
  const w = pool.take(4, true);
  w.write([1, 2, 3, 4]);
  pool.give(w);
  assert.equal(pool.bytes, 16);
  assert.notEqual(pool.take(5, false), w, 'another size is a fresh window');
  const params = pool.take(4, false);
  assert.equal(params, w);
  assert.deepEqual(Array.from(params.readSync()), [1, 2, 3, 4]);
  pool.give(params);
  const grads = pool.take(4, true);
  assert.equal(grads, w);
  assert.deepEqual(Array.from(grads.readSync()), [0, 0, 0, 0]);
  assert.equal(pool.bytes, 0);
});
