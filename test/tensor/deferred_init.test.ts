import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, type ModelSpec } from '../../src/nn/models/index.js';
import { buildDeferred, DeferredInitError, deferredValues, isDeferred } from '../../src/tensor/deferred_init.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

const SPECS: ModelSpec[] = [
  { type: 'gpt2', vocabSize: 37, context: 8, layers: 2, width: 16, heads: 2, dropout: 0 },
  { type: 'mlp', inputDim: 12, hidden: [9, 7], out: 5 },
  { type: 'bert', vocabSize: 29, context: 8, layers: 1, width: 8, heads: 2, intermediate: 32, dropout: 0 },
  { type: 'cnn', inChannels: 1, inputSize: 8, out: 3 },
  {
    type: 'llama', modelType: 'qwen3', vocabSize: 31, context: 8, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 8,
    ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: true, qkvBias: true, qkNorm: true, dropout: 0,
  },
];

describe('ZeRO deferred initialisation', () => {
  for (const spec of SPECS) {
    it(`${spec.type === 'llama' ? spec.modelType : spec.type}: every range of every parameter is made with the whole build's values, and no parameter holds memory`, () => {
      const whole = createModel(spec, 11);
      const deferred = buildDeferred(() => createModel(spec, 11));
      const wholeParams = whole.namedParameters();
      const params = deferred.namedParameters();
      assert.deepEqual(params.map(([n]) => n), wholeParams.map(([n]) => n));
      params.forEach(([name, p], i) => {
        assert.ok(isDeferred(p.storage), `${name} is deferred`);
        assert.equal(p.storage.byteLength, 0);
        const values = wholeParams[i][1].values() as Float32Array;
        assert.deepEqual(deferredValues(p.storage as never, 0, p.size), values, name);
        // A range from the middle: the stream skipped to it, not regenerated from the start by the caller.
        const from = Math.floor(p.size / 3);
        const to = Math.max(from, p.size - 1);
        assert.deepEqual(deferredValues(p.storage as never, from, to), values.subarray(from, to), `${name} [${from}, ${to})`);
      });
      assert.deepEqual(deferred.namedBuffers().map(([n, b]) => [n, [...b]]), whole.namedBuffers().map(([n, b]) => [n, [...b]]));
    });
  }

  it('a build that computes with a parameter is refused by name; allocations outside the build are real again', () => {
    assert.throws(() => buildDeferred(() => Tensor.uniform([4], new Rng(1), 0, 1).values()), DeferredInitError);
    assert.equal(Tensor.zeros([3]).values().length, 3);
  });
});
