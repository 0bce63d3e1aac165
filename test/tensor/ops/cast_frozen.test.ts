/**
 * Held casts of frozen weights (ops/cast_frozen.ts): a registered frozen float32 weight is cast to
 * bf16 once and the cast reused by every bf16 product while the weight stays as it was, the same
 * bits as autocast's cast per product, output and input gradient; a write casts again; a weight
 * bound to other memory than its own, one that trains, or one never registered, is cast per
 * product as before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tensor, backward, linear, withComputePrecision } from '../../../src/tensor/index.js';
import { frozenCastOf, holdFrozenCasts } from '../../../src/tensor/ops/cast_frozen.js';
import { Rng, randn } from '../../helpers/tensors.js';

const seeded = (seed: number, shape: number[]): Tensor => Tensor.from(randn(shape, new Rng(seed)).values(), shape, 'float32');

/** A bf16 step's linear x·wᵀ: its output and x's gradient (seeded with ones). */
function product(w: Tensor): { y: number[]; gx: number[] } {
  const x = seeded(1, [6, 10]);
  x.requiresGrad = true;
  const y = withComputePrecision('bf16', () => linear(x, w, null));
  backward(y, new Float32Array(y.size).fill(1));
  return { y: Array.from(y.values()), gx: Array.from(x.grad!.readSync()) };
}

describe('held casts of frozen weights', () => {
  it('casts a registered frozen weight once, with the bits of a cast per product', () => {
    const [held, plain] = [seeded(2, [7, 10]), seeded(2, [7, 10])];
    holdFrozenCasts([held]);
    const cast = frozenCastOf(held);
    assert.equal(cast?.dtype, 'bfloat16');
    assert.equal(frozenCastOf(held), cast, 'the same cast on a second use');
    assert.deepEqual(product(held), product(plain));
    assert.equal(frozenCastOf(held), cast, 'products reuse it');
  });

  it('casts again after a write; holds nothing for a weight bound to other memory, one that trains or one not registered', () => {
    const w = seeded(3, [7, 10]);
    holdFrozenCasts([w]);
    const first = frozenCastOf(w)!;
    w.storage.write(seeded(4, [7, 10]).values() as Float32Array);
    const second = frozenCastOf(w)!;
    assert.notEqual(second, first);
    assert.deepEqual(product(w), product(seeded(4, [7, 10])));
    // Bound to other memory (ZeRO-3's gathered windows): cast per product, nothing held.
    w.storage = seeded(5, [7, 10]).storage;
    assert.equal(frozenCastOf(w), null);
    assert.deepEqual(product(w), product(seeded(5, [7, 10])));
    const training = seeded(6, [7, 10]);
    training.requiresGrad = true;
    holdFrozenCasts([training]);
    assert.equal(frozenCastOf(training), null);
    assert.equal(frozenCastOf(seeded(7, [7, 10])), null);
  });
});
