/**
 * withLogitsToKeep: a causal LM's head computes each row's last k positions only (transformers'
 * logits_to_keep), the same logits and the same gradients as the full forward sliced; the scope
 * nests and ends with its function, and refuses a k that keeps nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logitsToKeep, withLogitsToKeep } from '../../../src/nn/layers/logits_to_keep.js';
import { type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { backward } from '../../../src/tensor/autograd.js';
import { mul, sum } from '../../../src/tensor/index.js';
import { slice } from '../../../src/tensor/ops/layout.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { assertClose } from '../../helpers/tensors.js';

const VOCAB = 29;
const MODELS: [string, ModelSpec][] = [
  ['gpt2', { type: 'gpt2', vocabSize: VOCAB, context: 16, layers: 2, width: 16, heads: 2, dropout: 0 }],
  ['llama', {
    type: 'llama', modelType: 'llama', vocabSize: VOCAB, context: 16, layers: 2, width: 16, intermediate: 24, heads: 2, kvHeads: 1, headDim: 8,
    ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: false, qkNorm: false, dropout: 0,
  }],
];

/**
 * The last k positions' logits of ids [2, 7] and every parameter's gradient of Σ logits · W (W
 * fixed): through the scope (`scoped`), or sliced from the full forward.
 */
function lastLogits(model: Module, k: number, scoped: boolean): { shape: number[]; logits: Float32Array; grads: Float32Array } {
  const rng = new Rng(5);
  const ids = Tensor.from(Array.from({ length: 14 }, () => rng.int(VOCAB)), [2, 7], 'int32');
  model.zeroGrad();
  const logits = scoped ? withLogitsToKeep(k, () => model.forward(ids)) : slice(model.forward(ids), 1, 7 - k, 7);
  const w = new Rng(9);
  backward(sum(mul(logits, Tensor.from(Array.from({ length: logits.size }, () => w.normal()), logits.shape))));
  return { shape: logits.shape.slice(), logits: Float32Array.from(logits.values()), grads: Float32Array.from(model.arena().grads.readSync()) };
}

describe('withLogitsToKeep', () => {
  for (const [name, spec] of MODELS) {
    it(`${name}: the head gives each row's last k positions, their logits and every gradient within 1e-5 of the full forward's sliced`, () => {
      const model = createModel(spec, 4);
      for (const k of [1, 3, 7]) {
        const kept = lastLogits(model, k, true);
        const full = lastLogits(model, k, false);
        assert.deepEqual(kept.shape, [2, k, VOCAB], `k ${k}: the head's positions`);
        assertClose(kept.logits, full.logits, { atol: 1e-5, rtol: 0, msg: `k ${k} logits` });
        assertClose(kept.grads, full.grads, { atol: 1e-5, rtol: 0, msg: `k ${k} gradients` });
      }
      assert.deepEqual(withLogitsToKeep(9, () => model.forward(Tensor.from([1, 2, 3], [1, 3], 'int32'))).shape, [1, 3, VOCAB], 'k past the row: every position');
    });
  }
  it('nests, ends with its function (or its throw), and refuses a k that keeps nothing', () => {
    assert.equal(logitsToKeep(), null);
    withLogitsToKeep(4, () => {
      assert.equal(logitsToKeep(), 4);
      withLogitsToKeep(2, () => assert.equal(logitsToKeep(), 2));
      assert.equal(logitsToKeep(), 4);
    });
    assert.throws(() => withLogitsToKeep(3, () => { throw new Error('inside'); }), /inside/);
    assert.equal(logitsToKeep(), null);
    for (const k of [0, -1, 1.5, NaN]) assert.throws(() => withLogitsToKeep(k, () => 0), /k must be a whole number ≥ 1/);
  });
});
