/** The Embedding layer's input: int32 token ids as they are, float ids converted on the host. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Embedding, tokenIds } from '../../../src/nn/layers/embedding.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';

describe('Embedding', () => {
  it('takes int32 ids as they are (no conversion) and float ids as their integral values, with the same result', () => {
    const layer = new Embedding(5, 3, new Rng(1));
    const ints = Tensor.fromHost(Int32Array.of(4, 0, 2, 4), [2, 2]);
    assert.equal(tokenIds(ints), ints, 'an int32 tensor is passed through');
    const floats = Tensor.from([4, 0, 2, 4], [2, 2]);
    assert.deepEqual(Array.from(tokenIds(floats) as Int32Array), [4, 0, 2, 4]);
    const a = layer.forward(ints);
    const b = layer.forward(floats);
    assert.deepEqual(a.shape, [2, 2, 3]);
    assert.deepEqual(a.toArray(), b.toArray());
  });
});
