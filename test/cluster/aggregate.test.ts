import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyAverage, taskWeights } from '../../src/cluster/aggregate.js';
import { retryDelayMs } from '../../src/cluster/backoff.js';

test('deltas are averaged in task order with equal or sample-count weights', () => {
  const g = Float32Array.of(1, 1);
  applyAverage(g, [Float32Array.of(2, 0), Float32Array.of(0, 4)], taskWeights([10, 30], 'equal'));
  assert.deepEqual([...g], [2, 3]);
  const h = Float32Array.of(0, 0);
  applyAverage(h, [Float32Array.of(4, 0), Float32Array.of(0, 4)], taskWeights([10, 30], 'samples'));
  assert.deepEqual([...h], [1, 3]);
  assert.throws(() => applyAverage(h, [Float32Array.of(1)], [1]), /task 0 delta has 1 values, the model 2/);
});

test('the result does not depend on the order in which deltas arrived, only on their task index', () => {
  const deltas = Array.from({ length: 11 }, (_, t) => Float32Array.from({ length: 50 }, (_, i) => Math.sin(t * 50 + i) * 1e-3 * (t + 1)));
  const w = taskWeights(deltas.map(() => 1500), 'equal');
  const a = new Float32Array(50).fill(0.1);
  applyAverage(a, deltas, w);
  // Filling a results array by task index in a shuffled arrival order gives the same array.
  const arrived = new Array<Float32Array>(11);
  for (const t of [5, 2, 10, 0, 9, 1, 4, 8, 3, 7, 6]) arrived[t] = deltas[t];
  const b = new Float32Array(50).fill(0.1);
  applyAverage(b, arrived, w);
  assert.deepEqual(b, a);
});

test('retries back off exponentially up to the cap', () => {
  const p = { baseMs: 10, capMs: 100, maxAttempts: 9 };
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((a) => retryDelayMs(a, p)), [0, 10, 20, 40, 80, 100, 100]);
});
