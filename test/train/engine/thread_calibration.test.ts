/**
 * The default thread count's calibration (src/train/engine/thread_calibration.ts): the decision from the
 * probe's times, and the probe itself on the native backend (its verdict depends on the machine's
 * load, so only its shape is checked here; bench:threads measures whether the pick is the faster one).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsBackend } from '../../../src/tensor/backends/js.js';
import { loadNativeBackend } from '../../../src/tensor/backends/native.js';
import { MIN_SPEEDUP, calibrateThreads, pickThreads } from '../../../src/train/engine/thread_calibration.js';

describe('pickThreads', () => {
  test('keeps max threads only when their median time beats one thread by MIN_SPEEDUP', () => {
    assert.deepEqual(pickThreads([10, 10, 10], [5, 6, 5], 2), { threads: 2, speedup: 2 });
    assert.equal(pickThreads([10, 10, 10], [10 / MIN_SPEEDUP, 10 / MIN_SPEEDUP, 9], 2).threads, 2);
    assert.equal(pickThreads([10, 10, 10], [9.5, 9.5, 9.5], 2).threads, 1, 'a 5% gain is within the probe\'s noise');
    assert.equal(pickThreads([10, 10, 10], [30, 30, 4], 2).threads, 1, 'slower at 2 threads (one lucky round does not count)');
    assert.equal(pickThreads([10, 11, 12], [2, 3, 4], 4).threads, 4);
    assert.equal(pickThreads([10], [1], 1).threads, 1);
  });
});

describe('calibrateThreads', () => {
  test('the js backend has no thread pool: one thread, nothing timed', () => {
    assert.deepEqual(calibrateThreads(jsBackend, 2), { threads: 1, speedup: NaN, ms: 0 });
  });

  const { backend: native, reason } = loadNativeBackend();
  test('native: picks 1 or max, reports the measured speed-up, restores the thread count', { skip: !native && (reason ?? 'native addon unavailable') }, () => {
    native!.setThreads(1);
    const c = calibrateThreads(native!, 2);
    assert.ok(c.threads === 1 || c.threads === 2, `threads ${c.threads}`);
    assert.ok(c.speedup > 0 && Number.isFinite(c.speedup), `speedup ${c.speedup}`);
    assert.equal(c.threads === 2, c.speedup >= MIN_SPEEDUP);
    assert.equal(native!.getThreads(), 1, 'the backend is left as it was');
    assert.ok(c.ms < 10_000, `took ${c.ms} ms`);
  });
});
