/**
 * A generation step in bf16 casts each weight once per generation (the cast cache), not once per
 * op call, and computes the very same logits as casting per op. In fp32 on the cpu a step recycler
 * gives each step the last step's buffers, with the very same logits.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import { inferenceForward, stepRecycler, weightCasts } from '../../src/generate/inference_forward.js';
import { KvCache, SequenceCache } from '../../src/generate/kv_cache.js';
import { holdBf16Casts } from '../../src/generate/model_casts.js';
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

  it("fp32: a step recycler reuses the last step's buffers, the logits unchanged; none in bf16", () => {
    const [, spec] = FAMILIES.find(([name]) => name.startsWith('llama'))!;
    const model = randomModel(spec, 3);
    assert.equal(stepRecycler(model, 'bf16'), null, 'a bf16 step makes weight casts that outlive it');
    const recycler = stepRecycler(model, 'fp32');
    assert.ok(recycler);
    const decode = (r: typeof recycler | null): Float32Array[] => {
      const rows = [new SequenceCache(), new SequenceCache()];
      const prefill = new KvCache(rows);
      inferenceForward(model, Tensor.from([3, 1, 4, 1, 5, 9, 2, 6], [2, 4], 'int32'), prefill, 'fp32', null, r);
      prefill.advance(4);
      return [7, 8, 9].map((t) => {
        const step = new KvCache(rows, { lastPositionOnly: true });
        const logits = inferenceForward(model, Tensor.from([t, t + 1], [2, 1], 'int32'), step, 'fp32', null, r).values() as Float32Array;
        step.advance(1);
        return logits.slice();
      });
    };
    const plain = decode(null);
    const recycled = decode(recycler);
    const taken = recycler.bytesTaken;
    assert.ok(taken > 0, 'the steps took their buffers from the recycler');
    assert.deepEqual(recycled, plain);
    const again = decode(recycler);
    assert.deepEqual(again, plain);
    assert.equal(recycler.bytesTaken, taken, 'a step takes the same buffers as the last one');
  });
});

describe('inferenceForward: a prefill recycles across its layers', () => {
  it('with a recycler the prefill\'s logits are bit for bit those without, for every family, fp32 and bf16 with held casts', () => {
    for (const [name, spec] of FAMILIES) {
      for (const precision of ['fp32', 'bf16'] as const) {
        const model = randomModel(spec, 5);
        if (precision === 'bf16') holdBf16Casts(model);
        const casts = weightCasts(model, precision);
        const recycler = stepRecycler(model, precision);
        assert.ok(recycler, `${name} ${precision}: recyclable`);
        const prefill = (r: typeof recycler | null): Float32Array => {
          const cache = new KvCache([new SequenceCache(), new SequenceCache()], { lastPositionOnly: true });
          return inferenceForward(model, Tensor.from([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], [2, 5], 'int32'), cache, precision, casts, r).values() as Float32Array;
        };
        const plain = prefill(null);
        assert.deepEqual(prefill(recycler), plain, `${name} ${precision}`);
        assert.deepEqual(prefill(recycler), plain, `${name} ${precision}, again`);
      }
    }
  });
});
