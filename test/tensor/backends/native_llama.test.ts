/**
 * The native Llama-family kernels (src/native/llama.cc: rmsNorm, rotary, siluMul and their
 * backwards) against the pure-TypeScript ones at sizes that fork threads and sizes that do not,
 * with the accumulate and frozen-gradient conventions; the same bits on one thread and two; and
 * bad arguments refused by the addon. Skips without a built addon, fails under CI=true.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HostBackend } from '../../../src/tensor/backend.js';
import { jsHostBackend as js } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend } from '../../../src/tensor/backends/native.js';
import { Rng } from '../../../src/util/rng.js';
import { assertClose } from '../../helpers/tensors.js';

const loaded = loadNativeBackend();
const native = loaded.backend ? hostKernels(loaded.backend) : null;

function ntest(name: string, fn: (n: HostBackend) => void): void {
  test(name, (t) => {
    if (!native) {
      if (process.env.CI === 'true') assert.fail(`native addon missing: ${loaded.reason}`);
      t.skip(`native addon unavailable: ${loaded.reason}`);
      return;
    }
    fn(native);
  });
}

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

const copy = (a: Float32Array): Float32Array => new Float32Array(a);

/** cos and sin [t, d/2] of Llama's angles. */
function tables(t: number, d: number): [Float32Array, Float32Array] {
  const h = d / 2;
  const angles = Array.from({ length: t * h }, (_, k) => Math.floor(k / h) * 10000 ** (-(2 * (k % h)) / d));
  return [Float32Array.from(angles, Math.cos), Float32Array.from(angles, Math.sin)];
}

/** Runs `fn` on one thread and on two; returns both results. */
function onOneAndTwo<T>(n: HostBackend, fn: () => T): [T, T] {
  const before = n.getThreads();
  try {
    n.setThreads(1);
    const one = fn();
    n.setThreads(2);
    return [one, fn()];
  } finally {
    n.setThreads(before);
  }
}

describe('native Llama-family kernels', () => {
  ntest('rmsNorm and its backward match js (gx and gWeight accumulate; a null one is skipped)', (n) => {
    const rng = new Rng(1);
    for (const [rows, cols] of [[1, 1], [5, 7], [4 * 256, 576], [3, 4096], [7000, 64]]) {
      const label = `rmsNorm ${rows}x${cols}`;
      const x = randn(rng, rows * cols, 2);
      const w = randn(rng, cols);
      const [yj, yn] = [new Float32Array(rows * cols), new Float32Array(rows * cols)];
      const [ij, inn] = [new Float32Array(rows), new Float32Array(rows)];
      js.rmsNorm(x, rows, cols, w, 1e-6, yj, ij);
      n.rmsNorm(x, rows, cols, w, 1e-6, yn, inn);
      assertClose(yn, yj, { rtol: 1e-5, atol: 1e-5, msg: label });
      assertClose(inn, ij, { rtol: 1e-6, msg: `${label} invRms` });
      const gy = randn(rng, rows * cols);
      const [gx0, gw0] = [randn(rng, rows * cols), randn(rng, cols)];
      const [gxj, gxn, gwj, gwn] = [copy(gx0), copy(gx0), copy(gw0), copy(gw0)];
      js.rmsNormBackward(x, rows, cols, w, ij, gy, gxj, gwj);
      n.rmsNormBackward(x, rows, cols, w, ij, gy, gxn, gwn);
      assertClose(gxn, gxj, { rtol: 1e-4, atol: 1e-4, msg: `${label} gx` });
      assertClose(gwn, gwj, { rtol: 1e-4, atol: 1e-3, msg: `${label} gWeight` });
      const [onlyX, onlyW] = [copy(gx0), copy(gw0)];
      n.rmsNormBackward(x, rows, cols, w, ij, gy, onlyX, null);
      n.rmsNormBackward(x, rows, cols, w, ij, gy, null, onlyW);
      assertClose(onlyX, gxn, { rtol: 0, atol: 0, msg: `${label} gx alone` });
      assertClose(onlyW, gwn, { rtol: 0, atol: 0, msg: `${label} gWeight alone` });
    }
  });

  ntest('rotary and its backward match js (the backward accumulates)', (n) => {
    const rng = new Rng(2);
    for (const [slices, t, d] of [[1, 1, 2], [3, 5, 6], [4 * 9, 256, 64], [2, 33, 128]]) {
      const label = `rotary ${slices}x${t}x${d}`;
      const size = slices * t * d;
      const [cos, sin] = tables(t, d);
      const x = randn(rng, size);
      const [oj, on] = [new Float32Array(size), new Float32Array(size)];
      js.rotary(x, cos, sin, slices, t, d, oj);
      n.rotary(x, cos, sin, slices, t, d, on);
      assertClose(on, oj, { rtol: 1e-5, atol: 1e-6, msg: label });
      const g0 = randn(rng, size);
      const [gj, gn] = [copy(g0), copy(g0)];
      js.rotaryBackward(x, cos, sin, slices, t, d, gj);
      n.rotaryBackward(x, cos, sin, slices, t, d, gn);
      assertClose(gn, gj, { rtol: 1e-5, atol: 1e-6, msg: `${label} backward` });
    }
  });

  ntest('siluMul and its backward match js, far tails included (a null gradient is skipped)', (n) => {
    const rng = new Rng(3);
    for (const size of [1, 17, 4 * 256 * 1536 + 3]) {
      const label = `siluMul ${size}`;
      const gate = randn(rng, size, 4);
      gate[0] = -120;
      if (size > 1) gate[1] = 95;
      const up = randn(rng, size);
      const [oj, on] = [new Float32Array(size), new Float32Array(size)];
      js.siluMul(gate, up, oj);
      n.siluMul(gate, up, on);
      assertClose(on, oj, { rtol: 1e-5, atol: 1e-6, msg: label });
      const gy = randn(rng, size);
      const [gg0, gu0] = [randn(rng, size), randn(rng, size)];
      const [ggj, ggn, guj, gun] = [copy(gg0), copy(gg0), copy(gu0), copy(gu0)];
      js.siluMulBackward(gate, up, gy, ggj, guj);
      n.siluMulBackward(gate, up, gy, ggn, gun);
      assertClose(ggn, ggj, { rtol: 1e-5, atol: 1e-6, msg: `${label} gGate` });
      assertClose(gun, guj, { rtol: 1e-5, atol: 1e-6, msg: `${label} gUp` });
      const [onlyGate, onlyUp] = [copy(gg0), copy(gu0)];
      n.siluMulBackward(gate, up, gy, onlyGate, null);
      n.siluMulBackward(gate, up, gy, null, onlyUp);
      assertClose(onlyGate, ggn, { rtol: 0, atol: 0, msg: `${label} gGate alone` });
      assertClose(onlyUp, gun, { rtol: 0, atol: 0, msg: `${label} gUp alone` });
    }
  });

  ntest('two threads give the same bits as one', (n) => {
    const rng = new Rng(4);
    const [rows, cols] = [2048, 576];
    const x = randn(rng, rows * cols), w = randn(rng, cols), gy = randn(rng, rows * cols);
    const [cos, sin] = tables(256, 64);
    const [one, two] = onOneAndTwo(n, () => {
      const y = new Float32Array(rows * cols), inv = new Float32Array(rows);
      n.rmsNorm(x, rows, cols, w, 1e-5, y, inv);
      const gx = new Float32Array(rows * cols), gw = new Float32Array(cols);
      n.rmsNormBackward(x, rows, cols, w, inv, gy, gx, gw);
      const r = new Float32Array(rows * cols);
      n.rotary(x, cos, sin, rows * cols / (256 * 64), 256, 64, r);
      const s = new Float32Array(rows * cols);
      n.siluMul(x, gy, s);
      return [y, gx, gw, r, s];
    });
    one.forEach((a, i) => assert.deepEqual(two[i], a, `output ${i}`));
  });

  ntest('bad arguments are refused by name', (n) => {
    const f = new Float32Array(8);
    assert.throws(() => n.rotary(f, f, f, 1, 1, 7, f), { name: 'RangeError', message: /d must be even, got 7/ });
    assert.throws(() => n.rotary(f, new Float32Array(1), f, 1, 2, 4, f), { name: 'RangeError', message: /'cos' has 1 elements, needs 4/ });
    assert.throws(() => n.rmsNorm(f, 2, 4, new Float32Array(3), 1e-6, f, new Float32Array(2)), { name: 'RangeError', message: /'weight' has 3 elements, needs 4/ });
    assert.throws(() => n.siluMul(new Float32Array(4), f, f), { name: 'RangeError', message: /'gate' has 4 elements, needs 8/ });
    assert.throws(() => n.siluMul(new Float64Array(8), f, f), { name: 'TypeError', message: /float32-only/ });
  });
});
