/** The gradient checker must itself catch wrong gradients — otherwise every op test passes vacuously. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tensor, affine, mul } from '../../src/tensor/index.js';
import type { DeviceBuffer } from '../../src/tensor/storage.js';

/** A hand-written cpu op's view of a gradient buffer (these deliberately wrong ops index it themselves). */
const host = (b: DeviceBuffer): Float64Array => b as unknown as Float64Array;
import { record } from '../../src/tensor/autograd.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { Rng, randn } from '../helpers/tensors.js';

/** y = x^2 with a deliberately wrong gradient on one element. */
function badSquare(x: Tensor, wrongAt: number, factor = 1.001): Tensor {
  const out = Tensor.zeros(x.shape, x.dtype);
  for (let i = 0; i < x.size; i++) out.values()[i] = x.values()[i] * x.values()[i];
  return record(out, 'badSquare', [x], (gy) => {
    const g = host(x.ensureGrad());
    for (let i = 0; i < x.size; i++) g[i] += host(gy)[i] * 2 * x.values()[i] * (i === wrongAt ? factor : 1);
  });
}

describe('gradcheck helper', () => {
  it('passes a correct gradient and reports how many elements it checked', () => {
    const res = gradcheck((a, b) => mul(a, b), [randn([2, 3], new Rng(1)), randn([2, 3], new Rng(2))]);
    assert.equal(res.checked, 12);
    assert.ok(res.worstRatio < 1);
  });
  it('catches a 0.1% error on one element and names it (input, flat and n-d index)', () => {
    const x = randn([2, 3], new Rng(3));
    assert.throws(
      () => gradcheck((t) => badSquare(t, 4), [x], { name: 'badSquare' }),
      /gradcheck\(badSquare\): 1 of 6 gradient elements out of tolerance; worst: input 0 \[2, 3\] element 4 at \[1, 1\]: analytic/,
    );
  });
  it('catches a missing gradient contribution (second input)', () => {
    const dropB = (a: Tensor, b: Tensor): Tensor => {
      const out = Tensor.zeros(a.shape, a.dtype);
      for (let i = 0; i < a.size; i++) out.values()[i] = a.values()[i] * b.values()[i];
      return record(out, 'dropB', [a, b], (gy) => {
        const g = host(a.ensureGrad());
        for (let i = 0; i < a.size; i++) g[i] += host(gy)[i] * b.values()[i];
        b.ensureGrad();
      });
    };
    assert.throws(() => gradcheck(dropB, [randn([3], new Rng(4)), randn([3], new Rng(5))]), /3 of 6 .*worst: input 1 \[3\]/);
  });
  it('catches a gradient written into an input that does not require grad', () => {
    const leaky = (a: Tensor, b: Tensor): Tensor => {
      const out = affine(a, 2);
      const o2 = record(Tensor.from(out.values(), out.shape, 'float64'), 'leaky', [a, b], (gy) => {
        const g = host(a.ensureGrad());
        for (let i = 0; i < a.size; i++) g[i] += 2 * host(gy)[i];
        b.ensureGrad();
      });
      return o2;
    };
    assert.throws(() => gradcheck(leaky, [randn([2], new Rng(6)), randn([2], new Rng(7))], { wrt: [0] }), /input 1 \[2\] does not require grad but received a gradient/);
  });
  it('refuses float32 inputs and forward passes that modify their inputs', () => {
    assert.throws(() => gradcheck((t) => affine(t, 2), [Tensor.zeros([2])]), /input 0 must be float64/);
    const mutating = (t: Tensor): Tensor => {
      t.values()[0] += 1;
      return affine(t, 1);
    };
    assert.throws(() => gradcheck(mutating, [Tensor.zeros([2], 'float64')]), /modified input 0 at element 0/);
  });
  it('NaN gradients fail', () => {
    const nanGrad = (x: Tensor): Tensor => {
      const out = affine(x, 1);
      return record(Tensor.from(out.values(), out.shape, 'float64'), 'nan', [x], () => {
        x.ensureGrad();
        x.gradValues()!.fill(NaN);
      });
    };
    assert.throws(() => gradcheck(nanGrad, [randn([2], new Rng(8))]), /2 of 2 gradient elements out of tolerance; .*analytic NaN/);
  });
});
