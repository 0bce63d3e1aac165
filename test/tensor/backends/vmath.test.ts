/**
 * The native backend's vectorised exp (src/native/vmath.h) and what is built on it (sigmoid, the
 * tanh-form GELU): accuracy over the float range against float64 Math.exp, and the edge values.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsHostBackend as jsBackend } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend } from '../../../src/tensor/backends/native.js';

const loaded = loadNativeBackend();
const native = loaded.backend ? hostKernels(loaded.backend) : null;
const reason = loaded.reason;

describe('native vectorised exp', () => {
  if (!native) {
    test('skipped: native addon unavailable', { skip: reason ?? 'unavailable' }, () => {});
    return;
  }

  test('within 3 float32 ulps of the exact exp from -86 to 88.7 (200k points)', () => {
    const n = 200_000;
    const x = new Float32Array(n).map((_, i) => -86 + (174.7 * i) / (n - 1));
    const y = new Float32Array(n);
    native.unary('exp', x, y);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const exact = Math.exp(x[i]);
      const ulp = 2 ** (Math.floor(Math.log2(exact)) - 23);
      worst = Math.max(worst, Math.abs(y[i] - exact) / ulp);
    }
    assert.ok(worst <= 3, `worst error ${worst.toFixed(2)} ulp`);
  });

  test('edge values: 0, ±inf, NaN, overflow, underflow', () => {
    const x = new Float32Array([0, Infinity, -Infinity, NaN, 89, 88.7, -87, -100, 1e-30]);
    const y = new Float32Array(x.length);
    native.unary('exp', x, y);
    assert.equal(y[0], 1);
    assert.equal(y[1], Infinity);
    assert.equal(y[2], 0);
    assert.ok(Number.isNaN(y[3]));
    assert.equal(y[4], Infinity);
    assert.ok(Number.isFinite(y[5]) && Math.abs(y[5] / Math.exp(Math.fround(88.7)) - 1) < 1e-6);
    assert.ok(y[6] >= 0 && y[6] < 2e-38);
    assert.equal(y[7], 0);
    assert.equal(y[8], 1);
  });

  test('sigmoid and gelu (tanh form) agree with js to 2e-7 absolute over [-20, 20], and saturate cleanly', () => {
    const n = 40_001;
    const x = new Float32Array(n).map((_, i) => -20 + (40 * i) / (n - 1));
    for (const op of ['sigmoid', 'gelu'] as const) {
      const a = new Float32Array(n), b = new Float32Array(n);
      native.unary(op, x, a);
      jsBackend.unary(op, x, b);
      for (let i = 0; i < n; i++) {
        const tol = 2e-7 * Math.max(1, Math.abs(b[i]));
        assert.ok(Math.abs(a[i] - b[i]) <= tol, `${op}(${x[i]}): native ${a[i]}, js ${b[i]}`);
      }
    }
    const big = new Float32Array([-1e4, 1e4]);
    const out = new Float32Array(2);
    native.unary('gelu', big, out);
    assert.deepEqual(Array.from(out), [-0, 1e4]);
    const g = new Float32Array(2);
    native.unaryBackward('gelu', big, out, new Float32Array([1, 1]), g);
    assert.ok(Math.abs(g[0]) < 1e-20 && g[1] === 1, `gelu'(±1e4) = ${g[0]}, ${g[1]}`);
  });
});
