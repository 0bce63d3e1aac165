/**
 * The group sums as autograd ops: over two ranks in one process, the forward sum (g) and the
 * gradient sum (f) give what one process computes with both shards; autograd's backwardAsync
 * awaits f's sum, the synchronous backward refuses it by name, and a group of one is the identity.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward, backwardAsync } from '../../src/tensor/autograd.js';
import { type GroupReducer, sumGradientsOverGroup, sumOverGroup } from '../../src/tensor/group_sum.js';
import { mul } from '../../src/tensor/ops/elementwise.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { twoRanks } from '../helpers/two_ranks.js';

const leaf = (v: number[]): Tensor => Tensor.fromHost(Float32Array.from(v), [v.length], true);

describe('group sums in the graph', () => {
  it('f then g over two ranks: the forward sums the shards, backwardAsync sums the input gradient', async () => {
    const { reducers, calls } = twoRanks();
    const w = [[2, 3], [5, 7]];
    const runs = await Promise.all(reducers.map(async (group, r) => {
      const x = leaf([1, 2]);
      const weight = leaf(w[r]);
      const y = await sumOverGroup(mul(sumGradientsOverGroup(x, group), weight), group);
      await backwardAsync(sum(y));
      return { y: Array.from(y.values()), x: Array.from(x.gradValues()!), w: Array.from(weight.gradValues()!) };
    }));
    for (const run of runs) {
      assert.deepEqual(run.y, [1 * (2 + 5), 2 * (3 + 7)]);
      assert.deepEqual(run.x, [2 + 5, 3 + 7], 'f sums both shards\' contributions to the input gradient');
      assert.deepEqual(run.w, [1, 2]);
    }
    assert.equal(calls(), 4, 'one sum forward and one backward per rank');
  });

  it('the synchronous backward refuses a graph whose op awaits, naming it and backwardAsync', () => {
    const { reducers } = twoRanks();
    const x = leaf([1, 2]);
    assert.throws(() => backward(sum(mul(sumGradientsOverGroup(x, reducers[0]), x))), /'group_sum_gradients' awaits .*backwardAsync/);
  });

  it('a group of one is the identity and stays synchronous', () => {
    const one: GroupReducer = { size: 1, sumInPlace: () => assert.fail('a group of one sums nothing') };
    const x = leaf([3, 4]);
    const y = sumOverGroup(sumGradientsOverGroup(x, one), one);
    assert.ok(y instanceof Tensor);
    backward(sum(mul(y, y)));
    assert.deepEqual(Array.from(x.gradValues()!), [6, 8]);
  });
});

describe('an input read by several sharded layers', () => {
  it('gets one gradient sum over the group, however many layers read it', async () => {
    const { reducers, calls } = twoRanks();
    const grads = await Promise.all(reducers.map(async (group) => {
      const x = leaf([1, 2]);
      const a = sumGradientsOverGroup(x, group);
      assert.equal(sumGradientsOverGroup(x, group), a, 'the same f for the same input');
      await backwardAsync(sum(mul(a, sumGradientsOverGroup(x, group))));
      return Array.from(x.gradValues()!);
    }));
    assert.equal(calls(), 2, 'one sum per rank');
    for (const g of grads) assert.deepEqual(g, [2 * 2 * 1, 2 * 2 * 2], 'd/dx Σx² = 2x on each rank, summed over two ranks');
  });
});
