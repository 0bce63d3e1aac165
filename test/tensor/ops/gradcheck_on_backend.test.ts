/**
 * gradcheckOnBackend must itself catch a float32 backend that differs from the float64 reference,
 * in the forward or in a gradient only; otherwise the op suite would pass vacuously on native and
 * webgpu. The "wrong" ops here are right in float64 and off by 1% in float32.
 */
import assert from 'node:assert/strict';
import { it } from '../../helpers/every_backend.js';
import { Tensor, add, affine, mul, sub } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { computesFloat64 } from '../../helpers/on_device.js';
import { Rng, randn } from '../../helpers/tensors.js';

/** x·y in float64; 1.01·x·y in float32. */
const wrongForward = (x: Tensor, y: Tensor): Tensor => (x.dtype === 'float32' ? affine(mul(x, y), 1.01) : mul(x, y));

/** x·y in both, but in float32 the gradient of x is 1% too large: y·(x + 0.01·(x − x)) with the second x cut from the graph. */
const wrongGradient = (x: Tensor, y: Tensor): Tensor => (x.dtype === 'float32' ? mul(y, add(x, affine(sub(x, x.detach()), 0.01))) : mul(x, y));

it('passes an op that agrees, and on a float32 backend catches a wrong forward or a wrong gradient', async () => {
  const inputs = (): Tensor[] => [randn([3, 4], new Rng(1)), randn([3, 4], new Rng(2))];
  const res = await gradcheckOnBackend((x, y) => mul(x, y), inputs(), { name: 'mul' });
  assert.equal(res.checked, 24);
  if (computesFloat64()) {
    // The float64 backend is where the finite differences run: the float32 path is not taken.
    await gradcheckOnBackend(wrongForward, inputs());
    await gradcheckOnBackend(wrongGradient, inputs());
    return;
  }
  await assert.rejects(gradcheckOnBackend(wrongForward, inputs(), { name: 'wrongForward' }), /gradcheck\(wrongForward\) on \w+: forward: \d+ of 12 elements differ/);
  await assert.rejects(gradcheckOnBackend(wrongGradient, inputs(), { name: 'wrongGradient' }), /gradcheck\(wrongGradient\) on \w+: gradient of input 0: \d+ of 12 elements differ/);
  // Only the gradient of the input asked for is compared; the other has none on either side.
  await gradcheckOnBackend(wrongGradient, inputs(), { wrt: [1] });
});
