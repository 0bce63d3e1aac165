import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainAddInto, reduceInto, type Reducer } from '../../../src/comm/collectives/reduce_ops.js';
import { makeWorld, onAll, rankData } from '../fixture.js';

test('the default sum kernel rounds once per element, to float32', () => {
  const dst = Float32Array.of(1, 0.1, 3e38, -2);
  plainAddInto(dst, Float32Array.of(2 ** -24, 0.2, 3e38, 2));
  assert.deepEqual([...dst], [Math.fround(1 + 2 ** -24), Math.fround(Math.fround(0.1) + Math.fround(0.2)), Infinity, 0]);
});

test('reduceInto sums through the given kernel and takes max (NaN wins) itself', () => {
  const calls: number[] = [];
  const add: Reducer = (d, s) => {
    calls.push(d.length);
    plainAddInto(d, s);
  };
  const dst = Float32Array.of(1, 5, 0);
  reduceInto(dst, Float32Array.of(2, 3, NaN), 'max', add);
  assert.deepEqual([...dst], [2, 5, NaN]);
  assert.deepEqual(calls, []);
  reduceInto(dst, Float32Array.of(1, 1, 1), 'avg', add);
  assert.deepEqual(calls, [3], 'avg reduces as a sum');
});

test("a group's reducer (ProcessGroupOptions.reducer) is what its reducing collectives sum with", async () => {
  let elements = 0;
  const reducer: Reducer = (d, s) => {
    elements += d.length;
    plainAddInto(d, s);
  };
  const world = await makeWorld('inproc', 3, { reducer, chunkBytes: 64 });
  try {
    for (const algorithm of ['ring', 'direct', 'doubling'] as const) {
      elements = 0;
      const out = await onAll(world, (pg, r) => pg.allReduce(rankData(r, 300), { algorithm }));
      assert.ok(elements >= 3 * 200, `${algorithm}: ${elements} elements summed through the reducer`);
      for (let i = 0; i < 300; i += 37) assert.equal(out[2][i], rankData(0, 300)[i] + rankData(1, 300)[i] + rankData(2, 300)[i]);
    }
    elements = 0;
    await onAll(world, (pg, r) => pg.reduceScatter(rankData(r, 300)));
    assert.equal(elements, 3 * 200, 'reduce-scatter: each rank sums (n-1)/n of the buffer');
  } finally {
    await world.close();
  }
});
