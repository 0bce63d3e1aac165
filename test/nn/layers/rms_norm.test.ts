import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RMSNorm } from '../../../src/nn/layers/rms_norm.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { assertClose } from '../../helpers/tensors.js';

describe('RMSNorm (nn/layers/rms_norm.ts)', () => {
  it('one weight of ones named "weight"; x / √(mean(x²) + eps) · weight over the last axis', () => {
    const norm = new RMSNorm(4, 1e-6);
    assert.deepEqual(norm.namedParameters().map(([n, p]) => [n, [...p.shape]]), [['weight', [4]]]);
    assert.deepEqual(Array.from(norm.weight.values()), [1, 1, 1, 1]);
    norm.weight.storage.write(Float32Array.from([1, 2, 0.5, -1]));
    const x = [1, 2, 3, 4, -2, 0, 2, 1];
    const y = norm.forward(Tensor.from(x, [2, 4])).values();
    const want: number[] = [];
    for (let r = 0; r < 2; r++) {
      const row = x.slice(r * 4, r * 4 + 4);
      const rms = Math.sqrt(row.reduce((s, v) => s + v * v, 0) / 4 + 1e-6);
      row.forEach((v, i) => want.push((v / rms) * [1, 2, 0.5, -1][i]));
    }
    assertClose(y, want, { rtol: 1e-6 });
  });
});
