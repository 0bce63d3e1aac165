/** A model built only to be loaded draws no random values (transformers' no_init_weights). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, llamaSpec } from '../../src/nn/models/index.js';
import { randomInitSkipped, withoutRandomInit } from '../../src/tensor/init_scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

describe('withoutRandomInit', () => {
  it('makes randn and uniform write zeros without moving the generator', async () => {
    const rng = new Rng(7);
    const [n, u] = withoutRandomInit(() => [Tensor.randn([5], rng), Tensor.uniform([5], rng, -1, 1)]);
    assert.deepEqual([...await n.read()], [0, 0, 0, 0, 0]);
    assert.deepEqual([...await u.read()], [0, 0, 0, 0, 0]);
    assert.equal(rng.uniform(), new Rng(7).uniform(), 'no value was drawn');
  });

  it('ends with its build, also when the build throws, and nests', () => {
    assert.equal(randomInitSkipped(), false);
    withoutRandomInit(() => {
      withoutRandomInit(() => assert.equal(randomInitSkipped(), true));
      assert.equal(randomInitSkipped(), true, 'the outer scope still holds');
    });
    assert.throws(() => withoutRandomInit(() => {
      throw new Error('build failed');
    }), /build failed/);
    assert.equal(randomInitSkipped(), false);
    const drawn = Tensor.randn([3], new Rng(1));
    assert.notDeepEqual([...drawn.storage.readSync()], [0, 0, 0]);
  });

  it('leaves the models\' own re-initialisation out too: every weight is zero, ones-filled norms stay ones', async () => {
    const spec = llamaSpec('llama-tiny', 32, 16);
    const model = withoutRandomInit(() => createModel(spec, 0));
    for (const [name, p] of model.namedParameters()) {
      const values = await p.read() as Float32Array;
      const want = name.endsWith('norm.weight') ? 1 : 0;
      assert.ok(values.every((v) => v === want), `${name} holds drawn values`);
    }
  });
});
