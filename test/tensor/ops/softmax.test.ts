import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { logSoftmax, softmax, sum } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, onDevice, tensor, valuesOf, zeros } from '../../helpers/on_device.js';
import { Rng, assertShape, randn } from '../../helpers/tensors.js';

const OPS = [
  { name: 'softmax', fn: softmax },
  { name: 'logSoftmax', fn: logSoftmax },
];

describe('softmax / logSoftmax', () => {
  for (const op of OPS) {
    for (const shape of [[5], [3, 5], [2, 3, 4], [4, 1]]) {
      it(`gradcheck ${op.name} ${JSON.stringify(shape)}`, async () => {
        await gradcheckOnBackend((x) => op.fn(x), [randn(shape, new Rng(shape.length), 'float64', 2)], { name: op.name });
      });
    }
    it(`gradcheck ${op.name} with an explicit last axis`, async () => {
      await gradcheckOnBackend((x) => op.fn(x, 1), [randn([2, 3], new Rng(9))], { name: op.name });
    });
    it(`${op.name}: shape error names the op and the shape`, () => {
      assert.throws(() => op.fn(zeros([2, 3]), 0), new RegExp(`^ShapeError: ${op.name}: only the last axis is supported .*\\(shapes \\[2, 3\\]\\)`));
    });
  }

  it('softmax of [1, 2, 3] (known values), rows sum to 1', async () => {
    const y = softmax(tensor([1, 2, 3], [1, 3]));
    assertValues(await valuesOf(y), [0.09003057317038046, 0.24472847105479767, 0.6652409557748219], { rtol: 1e-14 });
    const r = softmax(onDevice(randn([4, 7], new Rng(1), 'float64', 3)));
    assertShape(r, [4, 7]);
    assertValues(await valuesOf(sum(r, 1)), [1, 1, 1, 1], { rtol: 1e-14 });
    for (const v of await valuesOf(r)) assert.ok(v > 0 && v < 1);
  });
  it('softmax is shift-invariant and stable for large logits', async () => {
    const a = await valuesOf(softmax(tensor([1000, 1001, 1002], [3])));
    const b = await valuesOf(softmax(tensor([-2, -1, 0], [3])));
    assertValues(a, b, { rtol: 1e-14 });
    const f = await valuesOf(softmax(tensor([1000, 1001, 1002, -1000], [4], 'float32')));
    for (const v of f) assert.ok(Number.isFinite(v));
    assert.equal(f[3], 0);
  });
  it('logSoftmax = log(softmax), finite where softmax underflows', async () => {
    const x = onDevice(randn([3, 5], new Rng(2), 'float64', 2));
    assertValues(await valuesOf(logSoftmax(x)), (await valuesOf(softmax(x))).map(Math.log), { rtol: 1e-13, atol: 1e-14 });
    const y = await valuesOf(logSoftmax(tensor([0, 1000], [2])));
    assertValues(y, [-1000, 0]);
    assertValues(await valuesOf(logSoftmax(tensor([1, 2, 3], [3]))), [-2.40760596444438, -1.40760596444438, -0.40760596444438013], { rtol: 1e-14 });
  });
});
