/**
 * A generation step in bf16 casts each weight once per generation (the cast cache), not once per
 * op call, and computes the very same logits as casting per op.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import { inferenceForward, weightCasts } from '../../src/generate/inference_forward.js';
import { KvCache } from '../../src/generate/kv_cache.js';
import { activeCastCache } from '../../src/tensor/ops/cast_cache.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { FAMILIES, randomModel } from './families.js';

describe('inferenceForward', () => {
  it('bf16: the weights cast once and reused, logits equal to casting per op; no cache in fp32 or after the call', () => {
    const [, spec] = FAMILIES.find(([name]) => name.startsWith('llama'))!;
    const model = randomModel(spec, 7);
    const ids = Tensor.from([3, 1, 4, 1, 5], [1, 5], 'int32');
    const casts = weightCasts(model, 'bf16')!;
    const plain = inferenceForward(model, ids, new KvCache(), 'bf16', null).values() as Float32Array;
    const cached = inferenceForward(model, ids, new KvCache(), 'bf16', casts).values() as Float32Array;
    assert.ok(casts.size > 0, 'weights were cast');
    const held = casts.size;
    const again = inferenceForward(model, ids, new KvCache(), 'bf16', casts).values() as Float32Array;
    assert.equal(casts.size, held, 'a second forward reuses every cast');
    assert.deepEqual(cached, plain);
    assert.deepEqual(again, plain);
    assert.equal(activeCastCache(), null, 'the cache is in place only during the forward');
    assert.equal(weightCasts(model, 'fp32'), null);
  });
});
