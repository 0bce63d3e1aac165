import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clipGradNorm } from '../../../src/nn/optim/clip.js';
import { assertClose } from '../../helpers/tensors.js';
import { CPU, deviceMemory } from '../../../src/tensor/storage.js';

/** The gradient as a cpu storage adopting it (writes land in the array). */
const host = (g: Float32Array) => deviceMemory(CPU).fromHost(g);

describe('clipGradNorm (torch.nn.utils.clip_grad_norm_)', async () => {
  it('returns the global L2 norm and scales to maxNorm when above it', async () => {
    const g = Float32Array.from([3, 4, 0, 12]); // norm 13
    const norm = await clipGradNorm(host(g), 6.5);
    assert.ok(Math.abs(norm - 13) < 1e-6, `norm ${norm}`);
    // torch 1.13: clip_grad_norm_ on this gradient with max_norm 6.5 returns 13.0 and leaves
    // [1.4999998807907104, 1.9999998807907104, 0.0, 5.999999523162842] (coef 6.5 / (13 + 1e-6)).
    assertClose(g, [1.4999998807907104, 1.9999998807907104, 0, 5.999999523162842], { rtol: 2e-7, atol: 1e-7 });
    let after = 0;
    for (const v of g) after += v * v;
    assert.ok(Math.abs(Math.sqrt(after) - 6.5) < 1e-5);
  });

  it('leaves gradients bitwise unchanged when the norm is below maxNorm', async () => {
    const g = Float32Array.from([0.1, -0.2, 0.3, 1e-3, -7e-5]);
    const before = Float32Array.from(g);
    const norm = await clipGradNorm(host(g), 1);
    assert.ok(Math.abs(norm - Math.sqrt(0.01 + 0.04 + 0.09 + 1e-6 + 4.9e-9)) < 1e-6);
    assert.deepEqual(g, before);
  });

  it('a zero gradient stays zero (no NaN), norm 0', async () => {
    const g = new Float32Array(8);
    assert.equal(await clipGradNorm(host(g), 1), 0);
    assert.ok(g.every((v) => v === 0));
  });

  it('works over a large arena (the norm is global, not per chunk)', async () => {
    const g = new Float32Array(100_003).fill(0.01); // norm 0.01·√100003 ≈ 3.1623
    const norm = await clipGradNorm(host(g), 1);
    assert.ok(Math.abs(norm - 0.01 * Math.sqrt(100_003)) < 1e-4, `norm ${norm}`);
    let sq = 0;
    for (const v of g) sq += v * v;
    assert.ok(Math.abs(Math.sqrt(sq) - 1) < 1e-4);
    assert.ok(g.every((v) => v === g[0]), 'every element scaled by the same factor');
  });

  it('a wrong argument is named, not met by a kernel error', async () => {
    await assert.rejects(clipGradNorm(Float32Array.of(1, 2) as never, 1), /clipGradNorm: the first argument is the model's gradient storage \(model\.arena\(\)\.grads\), got Float32Array/);
    await assert.rejects(clipGradNorm([] as never, 1), /got an array/);
    await assert.rejects(clipGradNorm(host(Float32Array.of(1)), 0), /maxNorm must be a finite number > 0, got 0/);
    await assert.rejects(clipGradNorm(host(Float32Array.of(1)), '1' as never), /maxNorm must be a finite number > 0, got 1/);
    await assert.rejects(clipGradNorm(host(Float32Array.of(1)), 1, -2), /norm must be a number >= 0 when given, got -2/);
  });
});
