/**
 * The lower-precision policy (torch's autocast): the step's precision selects which ops take bf16
 * operands, and autocast casts a listed op's float32 operands (all or none) under it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LOWER_PRECISION_OPS, Tensor, autocast, lowersToBf16, withComputePrecision } from '../../../src/tensor/index.js';

const f32 = (): Tensor => Tensor.from([1.5, -2.25], [2], 'float32');

describe('autocast', () => {
  it('lowers the listed ops under bf16 and none under fp32', () => {
    assert.deepEqual([...LOWER_PRECISION_OPS], ['matmul', 'linear', 'conv2d', 'scaledDotProductAttention']);
    for (const op of LOWER_PRECISION_OPS) {
      assert.equal(withComputePrecision('bf16', () => lowersToBf16(op)), true, op);
      assert.equal(withComputePrecision('fp32', () => lowersToBf16(op)), false, op);
    }
  });

  it('casts float32 operands to bfloat16 under bf16, and passes them as given under fp32', () => {
    const [a, b] = [f32(), f32()];
    assert.deepEqual(withComputePrecision('bf16', () => autocast('matmul', a, b)).map((t) => t.dtype), ['bfloat16', 'bfloat16']);
    const same = withComputePrecision('fp32', () => autocast('matmul', a, b));
    assert.ok(same[0] === a && same[1] === b);
  });

  it('leaves operands as given unless all are float32 (float64 is never lowered)', () => {
    const wide = Tensor.from([1, 2], [2], 'float64');
    const [a] = [f32()];
    const out = withComputePrecision('bf16', () => autocast('linear', a, wide));
    assert.ok(out[0] === a && out[1] === wide);
  });
});
