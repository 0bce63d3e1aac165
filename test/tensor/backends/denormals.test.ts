/**
 * Flush-to-zero / denormals-are-zero in the native kernels (src/native/denormals.h): on by default,
 * switchable, confined to the kernels (JavaScript's own arithmetic keeps subnormals), and Adam's
 * update over subnormal moments matches the js backend's within float tolerance either way.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsHostBackend as jsBackend } from '../../../src/tensor/backends/js.js';
import { hostKernels } from '../../../src/tensor/backends/cpu/storage.js';
import { loadNativeBackend, nativeInternals } from '../../../src/tensor/backends/native.js';

const loaded = loadNativeBackend();
const native = loaded.backend ? hostKernels(loaded.backend) : null;
const reason = loaded.reason;
const internals = nativeInternals();
const SUB = 1e-40; // a float32 subnormal (the smallest normal float32 is ~1.18e-38)

describe('native flush-to-zero / denormals-are-zero', () => {
  if (!native || !internals) {
    test('skipped: native addon unavailable', { skip: reason ?? 'unavailable' }, () => {});
    return;
  }
  // MXCSR's FTZ+DAZ on x86-64, FPCR.FZ on arm64 (src/native/denormals.h).
  const flushMatters = process.arch === 'x64' || process.arch === 'arm64';

  test('is on by default unless SMOLCLUSTER_FLUSH_DENORMALS=0', () => {
    assert.equal(internals.getFlushDenormals(), process.env.SMOLCLUSTER_FLUSH_DENORMALS !== '0');
  });

  test('on: subnormal inputs read as 0 and subnormal results are written as 0; off: kept', { skip: !flushMatters && 'x86-64 and arm64 only' }, () => {
    const before = internals.getFlushDenormals();
    try {
      const x = new Float32Array([SUB, 1]);
      const y = new Float32Array(2);
      internals.setFlushDenormals(true);
      native.affine(x, 1, 0, y);
      assert.deepEqual(Array.from(y), [0, 1]);
      internals.setFlushDenormals(false);
      native.affine(x, 1, 0, y);
      assert.equal(y[0], Math.fround(SUB));
    } finally {
      internals.setFlushDenormals(before);
    }
  });

  test('the mode never leaks into JavaScript arithmetic on the calling thread', () => {
    internals.setFlushDenormals(true);
    native.axpy(1, new Float32Array([SUB]), new Float32Array(1));
    const tiny = Number.MIN_VALUE * 3; // a double subnormal: would read as 0 under DAZ
    assert.ok(tiny > 0 && tiny / 3 === Number.MIN_VALUE);
    assert.equal(new Float32Array([SUB])[0] * 2, Math.fround(SUB) * 2);
  });

  test('Adam over decayed (subnormal) moments with zero gradients agrees with js', () => {
    const n = 4096;
    const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: true, step: 1000 };
    const mk = (): Float32Array[] => [new Float32Array(n).fill(0.5), new Float32Array(n), new Float32Array(n).fill(SUB), new Float32Array(n).fill(SUB)];
    const [pj, gj, mj, vj] = mk();
    const [pn, gn, mn, vn] = mk();
    jsBackend.adamStep(pj, gj, mj, vj, h);
    native.adamStep(pn, gn, mn, vn, h);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(pn[i] - pj[i]) <= 1e-6, `param ${i}: ${pn[i]} vs ${pj[i]}`);
  });
});
