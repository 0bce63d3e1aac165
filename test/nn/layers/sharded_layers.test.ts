/**
 * The sharded layers as ordinary modules, over two ranks in one process: a column-parallel then a
 * row-parallel linear (Megatron's MLP) give one process's output and, assembled, its gradients; a
 * vocabulary-parallel embedding gives the whole table's lookup and gradient; a sharded layer whose
 * group must be awaited refuses the synchronous forward by name; a group of one is an ordinary layer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Embedding } from '../../../src/nn/layers/embedding.js';
import { Linear } from '../../../src/nn/layers/linear.js';
import type { ShardRule } from '../../../src/nn/layers/sharded.js';
import { ColumnParallelLinear, RowParallelLinear } from '../../../src/nn/layers/sharded_linear.js';
import { VocabParallelEmbedding } from '../../../src/nn/layers/vocab_parallel_embedding.js';
import type { Module } from '../../../src/nn/module.js';
import { assembleShards, sliceShard } from '../../../src/parallel/sharding/shard_rule.js';
import { backward, backwardAsync } from '../../../src/tensor/autograd.js';
import { mul } from '../../../src/tensor/ops/elementwise.js';
import { sum } from '../../../src/tensor/ops/reduce.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { assertClose } from '../../helpers/tensors.js';
import { twoRanks } from '../../helpers/two_ranks.js';

/** Copies each of `whole`'s parameters into `shard` (rank of 2), split by the shard's rules. */
function load(shard: Module & { shardRules(): [string, ShardRule][] }, whole: Module, rank: number): void {
  const rules = new Map(shard.shardRules());
  const source = new Map(whole.namedParameters());
  for (const [name, p] of shard.namedParameters()) {
    const w = source.get(name)!;
    const rule = rules.get(name);
    p.storage.write(rule ? sliceShard(w.values() as Float32Array, w.shape, rule, rank, 2) : (w.values() as Float32Array));
  }
}

const input = (): Tensor => Tensor.fromHost(Float32Array.from({ length: 2 * 4 }, (_, i) => Math.sin(i + 1)), [2, 4], true);
/** A loss that weighs each output differently, so every gradient entry is checked. */
const weights = (n: number): Tensor => Tensor.fromHost(Float32Array.from({ length: n }, (_, i) => 1 + i / 7), [n]);

describe('column- then row-parallel linear over two ranks', () => {
  it('gives one process\'s output, input gradient and (assembled) weight gradients', async () => {
    const rng = new Rng(5);
    const fc = new Linear(4, 6, rng);
    const proj = new Linear(6, 3, rng);
    const x0 = input();
    const y0 = proj.forward(fc.forward(x0));
    backward(sum(mul(y0, weights(3))));

    const { reducers, calls } = twoRanks();
    const runs = await Promise.all(reducers.map(async (group) => {
      const col = new ColumnParallelLinear(4, 6, group);
      const row = new RowParallelLinear(6, 3, group);
      load(col, fc, group.rank);
      load(row, proj, group.rank);
      const x = input();
      const y = await row.run(col.forward(x));
      await backwardAsync(sum(mul(y, weights(3))));
      return { y: y.values() as Float32Array, x: x.gradValues() as Float32Array, col, row };
    }));
    assert.equal(calls(), 4, 'per rank: one sum forward (row), one backward (column)');
    for (const r of runs) {
      assertClose(Array.from(r.y), Array.from(y0.values()), { rtol: 1e-6, atol: 1e-6 });
      assertClose(Array.from(r.x), Array.from(x0.gradValues()!), { rtol: 1e-6, atol: 1e-6 });
    }
    const grads = (m: 'col' | 'row', name: 'weight' | 'bias') => runs.map((r) => r[m][name]!.gradValues() as Float32Array);
    assertClose(Array.from(assembleShards(grads('col', 'weight'), [6, 4], { dim: 0, groups: 1 })), Array.from(fc.weight.gradValues()!), { rtol: 1e-6, atol: 1e-6 });
    assertClose(Array.from(assembleShards(grads('row', 'weight'), [3, 6], { dim: 1, groups: 1 })), Array.from(proj.weight.gradValues()!), { rtol: 1e-6, atol: 1e-6 });
    for (const g of grads('row', 'bias')) assertClose(Array.from(g), Array.from(proj.bias!.gradValues()!), { rtol: 1e-6 });
  });

  it('a row-parallel layer over two ranks refuses the synchronous forward, naming run()', () => {
    const row = new RowParallelLinear(6, 3, twoRanks().reducers[0]);
    assert.throws(() => row.forward(Tensor.zeros([1, 3])), /RowParallelLinear sums over a tensor-parallel group: await its run\(\)/);
  });

  it('over a group of one, the pair is two ordinary linear layers (synchronous)', () => {
    const one = { rank: 0, size: 1, sumInPlace: () => assert.fail('a group of one sums nothing') };
    const rng = new Rng(2);
    const fc = new Linear(4, 6, rng);
    const col = new ColumnParallelLinear(4, 6, one);
    col.weight.storage.write(fc.weight.values() as Float32Array);
    col.bias!.storage.write(fc.bias!.values() as Float32Array);
    const row = new RowParallelLinear(6, 3, one);
    const y = row.forward(col.forward(input()));
    assert.deepEqual(y.shape, [2, 3]);
  });
});

describe('vocabulary-parallel embedding over two ranks', () => {
  it('looks up the whole table and gives each rank its rows\' gradient', async () => {
    const whole = new Embedding(6, 3, new Rng(9));
    const ids = Int32Array.from([0, 5, 2, 3, 3, 1]);
    const y0 = whole.lookup(ids, [2, 3]);
    backward(sum(mul(y0, weights(3))));
    const { reducers } = twoRanks();
    const runs = await Promise.all(reducers.map(async (group) => {
      const table = new VocabParallelEmbedding(6, 3, group);
      load(table, whole, group.rank);
      const y = await table.lookup(ids, [2, 3]);
      await backwardAsync(sum(mul(y, weights(3))));
      return { y: y.values() as Float32Array, grad: table.weight.gradValues() as Float32Array };
    }));
    for (const r of runs) assertClose(Array.from(r.y), Array.from(y0.values()), { rtol: 1e-7 });
    assertClose(Array.from(assembleShards(runs.map((r) => r.grad), [6, 3], { dim: 0, groups: 1 })), Array.from(whole.weight.gradValues()!), { rtol: 1e-6, atol: 1e-7 });
  });

  it('refuses a vocabulary that does not split evenly', () => {
    assert.throws(() => new VocabParallelEmbedding(7, 3, twoRanks().reducers[0]), /a vocabulary of 7 does not split into 2 equal parts/);
  });
});
