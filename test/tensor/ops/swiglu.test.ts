import assert from 'node:assert/strict';
import { describe, it } from '../../helpers/every_backend.js';
import { Tensor, mul, siluMul, sigmoid } from '../../../src/tensor/index.js';
import { gradcheckOnBackend } from '../../helpers/gradcheck.js';
import { assertValues, onDevice, valuesOf } from '../../helpers/on_device.js';
import { Rng, randn } from '../../helpers/tensors.js';

describe('siluMul', () => {
  it('matches silu(gate) · up written out, and the composed ops', async () => {
    const r = new Rng(2);
    // Wide values: sigmoid's tails (exp overflowing for gate ≪ 0) must stay finite.
    const gate = randn([3, 4, 5], r, 'float64', 6);
    const up = randn([3, 4, 5], r);
    const g = gate.toArray(), u = up.toArray();
    const want = g.map((z, i) => (z / (1 + Math.exp(-z))) * u[i]);
    const y = siluMul(onDevice(gate), onDevice(up));
    assert.deepEqual([...y.shape], [3, 4, 5]);
    assertValues(await valuesOf(y), want, { rtol: 1e-12, atol: 1e-12 });
    const composed = mul(mul(onDevice(gate), sigmoid(onDevice(gate))), onDevice(up));
    assertValues(await valuesOf(y), await valuesOf(composed), { rtol: 1e-12, atol: 1e-12 });
    const far = await valuesOf(siluMul(onDevice(Tensor.from([-200, 200], [2], 'float64')), onDevice(Tensor.from([1, 1], [2], 'float64'))));
    assertValues(far, [0, 200], { rtol: 1e-7, atol: 1e-30 });
  });

  it('gradcheck, and with gate or up frozen', async () => {
    const r = new Rng(5);
    const mk = (): Tensor[] => [randn([4, 7], r, 'float64', 2), randn([4, 7], r)];
    await gradcheckOnBackend((g, u) => siluMul(g, u), mk(), { name: 'siluMul' });
    await gradcheckOnBackend((g, u) => siluMul(g, u), mk(), { name: 'siluMul gate only', wrt: [0] });
    await gradcheckOnBackend((g, u) => siluMul(g, u), mk(), { name: 'siluMul up only', wrt: [1] });
  });

  it('refuses gate and up of different shapes', () => {
    const a = onDevice(Tensor.zeros([2, 3], 'float64'));
    assert.throws(() => siluMul(a, onDevice(Tensor.zeros([3, 2], 'float64'))), /siluMul: gate and up must have the same shape \(shapes \[2, 3\], \[3, 2\]\)/);
    assert.throws(() => siluMul(a, onDevice(Tensor.zeros([2, 3, 1], 'float64'))), /siluMul: gate and up must have the same shape/);
  });
});
