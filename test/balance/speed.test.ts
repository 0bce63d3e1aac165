import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpeedMeter } from '../../src/balance/speed.js';

/** Observes `steps` steps of `samples` each at `ms(step)` per sample (no fixed time), from `from`. */
function feed(m: SpeedMeter, from: number, steps: number, ms: (step: number) => number, samples = 64): void {
  for (let s = from; s < from + steps; s++) m.observe(s, samples, samples * ms(s));
}

describe('SpeedMeter', () => {
  it('leaves the warm-up step out and measures the window as a ratio of sums', () => {
    const m = new SpeedMeter();
    m.observe(0, 64, 64 * 50);
    m.observe(1, 64, 64 * 1);
    m.observe(2, 32, 32 * 4);
    assert.equal(m.windowMean, (64 + 128) / 96);
    assert.equal(m.samplesPerStep, 48);
    assert.ok(Number.isNaN(m.trend), 'no trend before a window closes');
    m.closeWindow();
    assert.equal(m.trend, 2);
    assert.ok(Number.isNaN(m.windowMean));
  });

  it('windows that agree are averaged into the trend: a noisy but equal node moves it little', () => {
    const m = new SpeedMeter();
    feed(m, 1, 10, () => 1);
    m.closeWindow();
    // ±20 % step-to-step noise; the window's mean is 1.1 (10 % off: within a quarter). The newer window weighs twice the older.
    feed(m, 11, 10, (s) => (s % 2 === 0 ? 1.32 : 0.88));
    m.closeWindow();
    assert.ok(Math.abs(m.trend - 3.2 / 3) < 1e-9, `trend ${m.trend}`);
  });

  it('a window far from the trend beyond its noise replaces it: the node\'s speed changed', () => {
    const m = new SpeedMeter();
    feed(m, 1, 10, () => 1);
    m.closeWindow();
    feed(m, 11, 10, () => 3);
    m.closeWindow();
    assert.equal(m.trend, 3);
  });

  it('a single long step (a pause) in a window is not a new speed when the window\'s noise explains it', () => {
    const m = new SpeedMeter();
    feed(m, 1, 10, () => 1);
    m.closeWindow();
    // One step of ten takes 4× as long: the window mean is 1.3, but its standard error is ~0.3.
    feed(m, 11, 10, (s) => (s === 15 ? 4 : 1));
    m.closeWindow();
    assert.ok(Math.abs(m.trend - 1.2) < 1e-9, `trend ${m.trend}`);
  });
});

describe('SpeedMeter settling', () => {
  it('a window that drifted (warm-up under a quota) is measured from its later half', () => {
    const m = new SpeedMeter();
    // Steps 1–4 take 190–200 ms of warm-up, steps 5–9 settle at 120–130 ms (128 samples each).
    [200, 195, 190, 192, 126, 120, 130, 124, 128].forEach((ms, i) => m.observe(i + 1, 128, ms));
    assert.equal(m.windowMean, (126 + 120 + 130 + 124 + 128) / (5 * 128));
    m.closeWindow();
    assert.equal(m.trend, (126 + 120 + 130 + 124 + 128) / (5 * 128));
  });

  it('a noisy window without drift is measured whole', () => {
    const m = new SpeedMeter();
    const busy = [50, 73, 21, 27, 36, 38, 17, 26, 28, 25];
    busy.forEach((ms, i) => m.observe(i + 1, 18, ms));
    assert.equal(m.windowMean, busy.reduce((a, b) => a + b, 0) / (busy.length * 18));
  });
});

describe('SpeedMeter jitter', () => {
  it('is not a drift: a steady decline has no jitter', () => {
    const m = new SpeedMeter();
    // 2 ms less every step, too gentle between halves to be cut, but an IQR would call it ±5 ms.
    for (let s = 1; s <= 10; s++) m.observe(s, 64, 80 - 2 * s);
    assert.ok(Math.abs(m.jitterMs - 2 / 0.954) < 1e-9, `jitter ${m.jitterMs}`);
  });

  it('is the spread of the busy time per step, robust to one long pause', () => {
    const m = new SpeedMeter();
    // Busy times alternate 60 and 68 ms (sd ≈ 4), one step pauses for 500 ms.
    for (let s = 1; s <= 11; s++) m.observe(s, 64, s === 6 ? 500 : s % 2 === 0 ? 60 : 68);
    assert.ok(m.jitterMs > 4 && m.jitterMs < 13, `jitter ${m.jitterMs}`);
  });
});
