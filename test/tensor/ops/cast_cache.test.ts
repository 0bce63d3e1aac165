/**
 * The bf16 cast cache (cast_cache.ts): with grad off a weight is cast once and reused, the products
 * equal autocast's per-op casts bit for bit, activations are never held, and with grad on (training)
 * the cache is not consulted.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { CastCache, Tensor, backward, linear, matmul, noGrad, setCastCache, withComputePrecision } from '../../../src/tensor/index.js';
import { Rng, randn } from '../../helpers/tensors.js';

function seeded(seed: number, shape: number[], requiresGrad = false): Tensor {
  const t = Tensor.from(randn(shape, new Rng(seed)).values(), shape, 'float32');
  t.requiresGrad = requiresGrad;
  return t;
}

const bf16 = <T>(fn: () => T): T => withComputePrecision('bf16', fn);

describe('CastCache', () => {
  afterEach(() => setCastCache(null));

  it('casts a weight once across forwards, and the products equal per-op casts bit for bit', () => {
    const w = seeded(1, [5, 6], true);
    const b = seeded(2, [5], true);
    const m = seeded(3, [6, 4], true);
    const cache = new CastCache([w, b, m]);
    const xs = [seeded(4, [3, 6]), seeded(5, [3, 6])];
    const plain = xs.map((x) => noGrad(() => bf16(() => [linear(x, w, b), matmul(x, m)])).map((y) => Array.from(y.values())));
    assert.equal(setCastCache(cache), null);
    const cached = xs.map((x) => noGrad(() => bf16(() => [linear(x, w, b), matmul(x, m)])).map((y) => Array.from(y.values())));
    assert.deepEqual(cached, plain);
    // The two matrix weights, once each; the bias is no operand of the cast (it stays float32), nor are the activations.
    assert.equal(cache.size, 2);
    assert.equal(cache.castOf(w), cache.castOf(w));
    assert.equal(cache.castOf(xs[0]), null);
  });

  it('keeps the values a weight had at its first use, until cleared', () => {
    const w = seeded(1, [4, 4], true);
    const x = seeded(2, [2, 4]);
    const cache = new CastCache([w]);
    setCastCache(cache);
    const run = (): number[] => Array.from(noGrad(() => bf16(() => linear(x, w, null))).values());
    const before = run();
    (w.values() as Float32Array).fill(0.5); // the cpu storage's own values: an in-place update
    assert.deepEqual(run(), before);
    cache.clear();
    const after = run();
    setCastCache(null);
    assert.deepEqual(after, run());
    assert.notDeepEqual(after, before);
  });

  it('is not consulted while grad is on: training steps cast per op and get float32 gradients', () => {
    const w = seeded(1, [5, 6], true);
    const x = seeded(2, [3, 6], true);
    const cache = new CastCache([w]);
    setCastCache(cache);
    const y = bf16(() => linear(x, w, null));
    backward(y, new Float32Array(y.size).fill(1));
    assert.equal(cache.size, 0);
    assert.equal(w.grad?.dtype, 'float32');
  });

  it('leaves float32 steps alone', () => {
    const w = seeded(1, [5, 6], true);
    const cache = new CastCache([w]);
    setCastCache(cache);
    const x = seeded(2, [3, 6]);
    const y = noGrad(() => linear(x, w, null));
    assert.equal(y.dtype, 'float32');
    assert.equal(cache.size, 0);
  });
});
